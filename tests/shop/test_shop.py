"""The demo shop's pages and forms, through the Flask test client."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import responses
from flask import Flask

from demo_shop.catalog import PRODUCTS
from demo_shop.money import format_money, parse_amount
from demo_shop.pricing import quote
from demo_shop.security import content_security_policy
from flask_psp_connector.domain.model import CartState
from flask_psp_connector.domain.payment import TransactionState, TransactionType
from tests.conftest import SECRET_KEY, STRIPE_API
from tests.shop_support import (
    ADMIN_PASSWORD,
    FLASK_SECRET,
    Browser,
    add_payment,
    audit,
    build_shop,
    checkout_form,
    paid_cart,
    store,
)

S, T = TransactionState, TransactionType

STRIPE_CSP = (
    "default-src 'self'; "
    "script-src 'self' https://js.stripe.com https://*.js.stripe.com https://maps.googleapis.com; "
    "frame-src 'self' https://js.stripe.com https://*.js.stripe.com https://hooks.stripe.com; "
    "connect-src 'self' https://api.stripe.com https://maps.googleapis.com; "
    "img-src 'self' data: https://*.stripe.com; "
    "style-src 'self'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'; object-src 'none'"
)


def text(response: Any) -> str:
    return response.get_data(as_text=True)


def lines(browser: Browser) -> list[tuple[str, int]]:
    cart = browser.cart()
    return [] if cart is None else [(item.sku, item.quantity) for item in cart.line_items]


def snapshot(browser: Browser) -> Any:
    """Everything about the session's cart that a refused request must leave alone."""
    cart = browser.cart()
    return None if cart is None else (cart.version, cart.line_items, cart.shipping_address, cart.customer_email,
                                      cart.shipping_amount, cart.tax_amount)


# -- pricing and money ------------------------------------------------------------------


def test_catalog_has_at_least_eight_products_with_images() -> None:
    assert len(PRODUCTS) >= 8
    assert len({p.slug for p in PRODUCTS}) == len({p.sku for p in PRODUCTS}) == len(PRODUCTS)
    for product in PRODUCTS:
        assert type(product.unit_price) is int and product.unit_price > 0
        assert product.description and product.image.endswith(".svg")


@pytest.mark.parametrize(
    ("subtotal", "country", "shipping", "tax"),
    [
        (0, "DE", 0, 0),
        (3600, "DE", 490, 777),    # (3600 + 490) * 19% = 777.1
        (3600, "FR", 990, 918),    # (3600 + 990) * 20% = 918
        (3600, None, 490, 777),    # no address yet: quoted for Germany
        (3600, "US", 490, 777),    # not shipped there: quoted for Germany
        (6000, "NL", 0, 1260),     # free shipping from 60 euros
        (1250, "FI", 990, 571),    # 2240 * 25.5% = 571.2
        (1, "DE", 490, 93),        # 491 * 19% = 93.29
        (2, "AT", 990, 198),       # 992 * 20% = 198.4
    ],
)
def test_quote_is_whole_cents_from_subtotal_and_country(subtotal, country, shipping, tax) -> None:
    priced = quote(subtotal, country)
    assert (priced.shipping, priced.tax) == (shipping, tax)
    assert type(priced.tax) is int


def test_tax_rounds_half_up() -> None:
    # 4500 * 19% = 855 exactly; 4510 * 1700bp = 766.7 -> 767 (Luxembourg, EU shipping)
    assert quote(4010, "DE").tax == 855
    assert quote(3520, "LU").tax == 767


@pytest.mark.parametrize(
    ("cents", "currency", "shown"),
    [(1250, "EUR", "€12.50"), (5, "EUR", "€0.05"), (123456789, "EUR", "€1,234,567.89"), (-1250, "EUR", "-€12.50"),
     (1500, "JPY", "¥1,500"), (12345, "KWD", "12.345 KWD"), (0, "EUR", "€0.00")],
)
def test_money_filter_formats_minor_units(cents, currency, shown) -> None:
    assert format_money(cents, currency) == shown


@pytest.mark.parametrize(
    ("typed", "currency", "cents"),
    [("12.50", "EUR", 1250), ("12.5", "EUR", 1250), ("12", "EUR", 1200), (" 0.01 ", "EUR", 1), ("1500", "JPY", 1500),
     ("1.234", "KWD", 1234)],
)
def test_parse_amount_reads_decimal_text(typed, currency, cents) -> None:
    assert parse_amount(typed, currency) == cents


@pytest.mark.parametrize(
    ("typed", "currency", "message"),
    [("", "EUR", "Enter an amount"), ("-5", "EUR", "Enter an amount"), ("0", "EUR", "more than zero"),
     ("0.00", "EUR", "more than zero"), ("1.234", "EUR", "at most 2 decimals"), ("abc", "EUR", "Enter an amount"),
     ("1e3", "EUR", "Enter an amount"), ("12,50", "EUR", "Enter an amount"), ("NaN", "EUR", "Enter an amount"),
     ("1.5", "JPY", "at most 0 decimals"), ("1" * 13, "EUR", "Enter an amount")],
)
def test_parse_amount_refuses_what_is_not_a_positive_amount(typed, currency, message) -> None:
    with pytest.raises(ValueError, match=message):
        parse_amount(typed, currency)


# -- pages --------------------------------------------------------------------------


def test_home_lists_every_product_with_image_and_price(browser) -> None:
    response = browser.get("/")
    assert response.status_code == 200
    page = text(response)
    for product in PRODUCTS:
        assert f"/products/{product.slug}" in page
        assert f"/static/img/products/{product.image}" in page
        assert format_money(product.unit_price) in page


def test_product_page_and_assets(browser) -> None:
    for product in PRODUCTS:
        page = browser.get(f"/products/{product.slug}")
        assert page.status_code == 200
        assert product.description in text(page)
        image = browser.get(f"/static/img/products/{product.image}")
        assert image.status_code == 200 and image.mimetype == "image/svg+xml"
    assert browser.get("/static/css/shop.css").status_code == 200
    assert browser.get("/static/js/order-status.js").status_code == 200


def test_unknown_product_is_an_html_404(browser) -> None:
    for response in (browser.get("/products/no-such-thing"), browser.add("no-such-thing", 1)):
        assert response.status_code == 404
        assert response.mimetype == "text/html"
        assert "Page not found" in text(response)
    assert browser.cart_id() is None


def test_empty_cart_page(browser) -> None:
    response = browser.get("/cart")
    assert response.status_code == 200 and "Your cart is empty" in text(response)


# -- cart -----------------------------------------------------------------------------


def test_add_to_cart_prices_from_the_catalog_and_the_server(browser) -> None:
    response = browser.add("stoneware-mug", 2)
    assert response.status_code == 303 and response.location == "/cart"
    cart = browser.cart()
    assert [(i.sku, i.name, i.quantity, i.unit_price.cent_amount) for i in cart.line_items] == [
        ("MUG-STONE-01", "Stoneware Mug", 2, 1800)]
    assert (cart.shipping_amount, cart.tax_amount, cart.total_price.cent_amount) == (490, 777, 3600 + 490 + 777)
    page = text(browser.get("/cart"))
    assert "Added 2 × Stoneware Mug to your cart." in page
    assert "€48.67" in page and "VAT (19%, Germany)" in page


def test_adding_again_adds_to_the_line(browser) -> None:
    browser.add("stoneware-mug", 2)
    browser.add("linen-tea-towel", 1)
    browser.add("stoneware-mug", 3)
    assert lines(browser) == [("MUG-STONE-01", 5), ("TOW-LINEN-01", 1)]


def test_the_price_cannot_be_set_by_the_form(browser) -> None:
    browser.post("/products/stoneware-mug/add", {"quantity": "1", "unit_price": "1", "price": "1", "sku": "X"})
    [item] = browser.cart().line_items
    assert (item.sku, item.unit_price.cent_amount) == ("MUG-STONE-01", 1800)


@pytest.mark.parametrize("quantity", ["0", "-1", str(10**9), "abc", "1.5", "", " ", "١", "100", "1e2"])
def test_bad_quantity_on_add_leaves_the_cart_unchanged(browser, quantity) -> None:
    browser.add("stoneware-mug", 2)
    before = snapshot(browser)
    response = browser.add("stoneware-mug", quantity)
    assert response.status_code == 400
    assert "Quantity must be a whole number from 1 to 99." in text(response)
    assert snapshot(browser) == before


def test_bad_quantity_on_first_add_creates_no_cart(browser) -> None:
    assert browser.add("stoneware-mug", "0").status_code == 400
    assert browser.cart_id() is None


def test_more_than_99_of_one_product_is_refused(browser) -> None:
    browser.add("stoneware-mug", 60)
    before = snapshot(browser)
    response = browser.add("stoneware-mug", 40)
    assert response.status_code == 400
    assert "at most 99 of one product" in text(response)
    assert snapshot(browser) == before


def test_change_quantity_reprices(browser) -> None:
    browser.add("stoneware-mug", 1)
    response = browser.post("/cart/items/MUG-STONE-01", {"quantity": "4"})
    assert response.status_code == 303
    cart = browser.cart()
    assert lines(browser) == [("MUG-STONE-01", 4)]
    assert (cart.shipping_amount, cart.tax_amount) == (0, 1368)  # 7200 ships free; 19% VAT
    assert "Your cart was updated." in text(browser.get("/cart"))


@pytest.mark.parametrize("quantity", ["0", "-3", str(10**9), "two", ""])
def test_bad_quantity_change_shows_a_message_and_keeps_the_cart(browser, quantity) -> None:
    browser.add("stoneware-mug", 2)
    before = snapshot(browser)
    response = browser.post("/cart/items/MUG-STONE-01", {"quantity": quantity}, follow_redirects=True)
    assert "Quantity must be a whole number from 1 to 99." in text(response)
    assert snapshot(browser) == before


def test_lines_not_in_the_cart_cannot_be_changed(browser) -> None:
    browser.add("stoneware-mug", 2)
    before = snapshot(browser)
    for url in ("/cart/items/TOW-LINEN-01", "/cart/items/NOPE", "/cart/items/TOW-LINEN-01/remove"):
        response = browser.post(url, {"quantity": "3"}, follow_redirects=True)
        assert "That product is not in your cart." in text(response)
    assert snapshot(browser) == before


def test_remove_line(browser) -> None:
    browser.add("stoneware-mug", 2)
    browser.add("canvas-tote", 1)
    response = browser.post("/cart/items/MUG-STONE-01/remove", follow_redirects=True)
    assert "Removed Stoneware Mug from your cart." in text(response)
    assert lines(browser) == [("BAG-TOTE-01", 1)]
    browser.post("/cart/items/BAG-TOTE-01/remove")
    cart = browser.cart()
    assert cart.line_items == () and (cart.shipping_amount, cart.tax_amount) == (0, 0)


def test_forged_session_cart_id_starts_a_new_cart(browser) -> None:
    with browser.client.session_transaction() as session:
        session["cart_id"] = str(uuid.uuid4())
    assert "Your cart is empty" in text(browser.get("/cart"))
    browser.add("stoneware-mug", 1)
    assert lines(browser) == [("MUG-STONE-01", 1)]
    with browser.client.session_transaction() as session:
        session["cart_id"] = {"not": "a string"}
    assert "Your cart is empty" in text(browser.get("/cart"))


def test_a_tampered_session_cookie_is_ignored(browser) -> None:
    browser.add("stoneware-mug", 1)
    cookie = browser.client.get_cookie("session")
    browser.client.set_cookie("session", cookie.value[:-3] + "AAA")
    assert "Your cart is empty" in text(browser.get("/cart"))


def test_an_ordered_cart_is_not_changed_again(browser, shop) -> None:
    browser.add("stoneware-mug", 1)
    cart_id = browser.cart_id()
    store(shop).create_order(cart_id)
    browser.add("canvas-tote", 1)
    assert browser.cart_id() != cart_id
    assert lines(browser) == [("BAG-TOTE-01", 1)]
    assert [i.sku for i in store(shop).get_cart(cart_id).line_items] == ["MUG-STONE-01"]


# -- checkout ----------------------------------------------------------------------------


def test_checkout_needs_a_cart(browser) -> None:
    response = browser.get("/checkout", follow_redirects=True)
    assert "Your cart is empty: add a product before checking out." in text(response)
    assert browser.checkout().status_code == 303
    assert browser.cart_id() is None


def test_checkout_saves_email_and_addresses_and_reprices(browser) -> None:
    browser.add("stoneware-mug", 2)
    response = browser.checkout(**{"shipping-country": "FR", "shipping-postal_code": "75001", "shipping-city": "Paris"})
    assert response.status_code == 303 and response.location == "/pay"
    cart = browser.cart()
    assert cart.customer_email == "jane@example.test"
    assert cart.shipping_address.city == "Paris" and cart.shipping_address.country == "FR"
    assert cart.billing_address == cart.shipping_address
    assert (cart.shipping_amount, cart.tax_amount) == (990, 918)
    # the form comes back pre-filled
    page = text(browser.get("/checkout"))
    assert 'value="Paris"' in page and 'value="jane@example.test"' in page


def test_a_different_billing_address(browser) -> None:
    browser.add("stoneware-mug", 1)
    billing = {"billing-first_name": "Acme", "billing-last_name": "GmbH", "billing-street_name": "Hauptstraße",
               "billing-postal_code": "80331", "billing-city": "München", "billing-country": "DE"}
    response = browser.checkout(billing_same=None, **billing)
    assert response.status_code == 303
    cart = browser.cart()
    assert cart.billing_address.city == "München" and cart.shipping_address.city == "Berlin"


def test_billing_fields_are_ignored_when_the_same(browser) -> None:
    browser.add("stoneware-mug", 1)
    assert browser.checkout(**{"billing-postal_code": "???"}).status_code == 303


@pytest.mark.parametrize(
    ("fields", "messages"),
    [
        ({"email": ""}, ["Enter your email address."]),
        ({"email": "not-an-email"}, ["Enter a valid email address"]),
        ({"email": "a@b"}, ["Enter a valid email address"]),
        ({"email": "x" * 250 + "@example.test"}, ["That email address is too long."]),
        ({"shipping-first_name": "", "shipping-city": ""}, ["Enter your first name.", "Enter your city."]),
        ({"shipping-street_name": None}, ["Enter your street."]),
        ({"shipping-postal_code": "<script>"}, ["Enter a valid postal code"]),
        ({"shipping-country": "US"}, ["We ship only to the countries in the list."]),
        ({"shipping-country": ""}, ["Choose a country."]),
        ({"shipping-phone": "call me"}, ["Enter a phone number"]),
        ({"shipping-last_name": "D" * 61}, ["Keep the last name under 61 characters."]),
        ({"billing_same": None}, ["Enter your first name.", "Enter your postal code."]),
    ],
)
def test_bad_checkout_fields_show_messages_and_keep_the_cart(browser, fields, messages) -> None:
    browser.add("stoneware-mug", 1)
    before = snapshot(browser)
    response = browser.checkout(**fields)
    assert response.status_code == 400
    page = text(response)
    assert "Please correct the highlighted fields." in page
    for message in messages:
        assert message in page
    assert snapshot(browser) == before


def test_customer_text_is_escaped(browser) -> None:
    browser.add("stoneware-mug", 1)
    evil = '<script>alert("x")</script>'
    assert browser.checkout(**{"shipping-first_name": evil, "shipping-city": '"><img src=x onerror=alert(1)>'}).status_code == 303
    for url in ("/pay", "/checkout"):
        page = text(browser.get(url))
        assert evil not in page and "<img src=x" not in page
        assert "&lt;script&gt;" in page
        assert not audit(page).inline_scripts and not audit(page).event_handlers


# -- payment page ------------------------------------------------------------------------


def test_pay_needs_items_and_details(browser) -> None:
    assert "Your cart is empty" in text(browser.get("/pay", follow_redirects=True))
    browser.add("stoneware-mug", 1)
    response = browser.get("/pay")
    assert response.status_code == 303 and response.location == "/checkout"


def test_pay_page_hands_the_browser_module_a_session_for_this_cart(browser, shop) -> None:
    cart_id = paid_cart(browser)
    page = text(browser.get("/pay"))
    found = audit(page)
    assert found.script_sources[0] == "https://js.stripe.com/v3/"
    assert found.script_sources[1] == "/psp-assets/psp-payment.js"
    assert 'data-processor-url="http://localhost"' in page
    assert f'data-complete-url="/orders/{cart_id}"' in page
    assert "data-psp-message" in page and 'id="pay"' in page and "Pay <span data-psp-total>€48.67</span>" in page
    session_id = page.split('data-session-id="', 1)[1].split('"', 1)[0]
    checkout_session = store(shop).get_session(session_id)
    assert checkout_session.cart_id == cart_id
    assert checkout_session.merchant_return_url == "http://localhost/return"
    with browser.client.session_transaction() as session:
        assert session["orders"] == [cart_id]
    assert "sandbox" not in page.lower()


def test_pay_without_stripe_keys_is_a_clear_html_error(sqlite_url) -> None:
    browser = Browser(build_shop(sqlite_url, STRIPE_SECRET_KEY=""))
    browser.add("stoneware-mug", 1)
    browser.checkout()
    response = browser.get("/pay")
    assert response.status_code == 503 and response.mimetype == "text/html"
    assert "STRIPE_SECRET_KEY is missing" in text(response)


# -- order page and status ------------------------------------------------------------------


def test_order_page_waits_then_places_the_order_once(browser, shop) -> None:
    cart_id = paid_cart(browser)
    page = text(browser.get(f"/orders/{cart_id}"))
    assert "Waiting for payment confirmation" in page
    assert f'data-status-url="/orders/{cart_id}/status"' in page
    assert audit(page).script_sources == ["/static/js/order-status.js"]
    assert browser.get(f"/orders/{cart_id}/status").get_json() == {
        "orderNumber": None, "paymentState": "Pending", "paymentStateLabel": "Waiting for payment confirmation",
        "cartState": "Active", "final": False}

    add_payment(shop, cart_id, states=((T.AUTHORIZATION, S.SUCCESS), (T.CHARGE, S.SUCCESS)))
    status = browser.get(f"/orders/{cart_id}/status").get_json()
    order = store(shop).find_order_by_cart(cart_id)
    assert status == {"orderNumber": order.order_number, "paymentState": "Paid", "paymentStateLabel": "Paid",
                      "cartState": "Ordered", "final": True}
    for _ in range(2):
        page = text(browser.get(f"/orders/{cart_id}"))
        assert order.order_number in page and "Your order is confirmed" in page
        assert "Stoneware Mug" in page and "Invalidenstraße" in page and "€48.67" in page
    assert store(shop).list_orders() == [store(shop).find_order_by_cart(cart_id)]
    assert browser.cart_id() is None  # the next visit starts a new cart
    assert "Your cart is empty" in text(browser.get("/cart"))


def test_order_page_with_an_authorization_only(browser, shop) -> None:
    cart_id = paid_cart(browser)
    add_payment(shop, cart_id, states=((T.AUTHORIZATION, S.SUCCESS),))
    status = browser.get(f"/orders/{cart_id}/status").get_json()
    assert status["paymentState"] == "Authorized" and status["final"] and status["orderNumber"]


def test_failed_payment_is_final_and_offers_a_retry(browser, shop) -> None:
    cart_id = paid_cart(browser)
    add_payment(shop, cart_id, states=((T.AUTHORIZATION, S.FAILURE),))
    status = browser.get(f"/orders/{cart_id}/status").get_json()
    assert status == {"orderNumber": None, "paymentState": "Failed", "paymentStateLabel": "Payment failed",
                      "cartState": "Active", "final": True}
    assert store(shop).find_order_by_cart(cart_id) is None
    assert browser.cart_id() == cart_id


def test_foreign_carts_are_not_found(browser, shop) -> None:
    other = Browser(shop)
    foreign = paid_cart(other)
    add_payment(shop, foreign, states=((T.AUTHORIZATION, S.SUCCESS), (T.CHARGE, S.SUCCESS)))
    for url in (f"/orders/{foreign}", f"/orders/{uuid.uuid4()}"):
        response = browser.get(url)
        assert response.status_code == 404 and response.mimetype == "text/html"
    nul = browser.get(f"/orders/{foreign}%00")  # refused before any look-up
    assert nul.status_code == 400 and nul.mimetype == "text/html"
    status = browser.get(f"/orders/{foreign}/status")
    assert status.status_code == 404 and status.get_json() == {"message": "Not found."}
    assert store(shop).find_order_by_cart(foreign) is None  # nothing was placed by looking


# -- return page --------------------------------------------------------------------------


def pinned_intent(mock: responses.RequestsMock, payment: Any, status: str, **fields: Any) -> None:
    amount = payment.amount_planned.cent_amount
    body = {"id": payment.interface_id, "object": "payment_intent", "amount": amount, "amount_received": amount,
            "currency": "eur", "status": status, "metadata": {"ct_payment_id": payment.id}}
    body.update(fields)
    mock.add(responses.GET, f"{STRIPE_API}/v1/payment_intents/{payment.interface_id}", json=body)


def return_url(cart_id: str, payment: Any, redirect_status: str = "succeeded", **extra: str) -> str:
    query = {"cartId": cart_id, "paymentReference": payment.id, "payment_intent": payment.interface_id,
             "payment_intent_client_secret": f"{payment.interface_id}_secret_x", "redirect_status": redirect_status}
    query.update(extra)
    return "/return?" + "&".join(f"{k}={v}" for k, v in query.items())


def test_return_succeeded_records_once_and_goes_to_the_order(browser, shop, stripe_mock) -> None:
    cart_id = paid_cart(browser)
    payment = add_payment(shop, cart_id)
    pinned_intent(stripe_mock, payment, "succeeded")
    for _ in range(3):  # reloading changes nothing more
        response = browser.get(return_url(cart_id, payment))
        assert response.status_code == 303 and response.location == f"/orders/{cart_id}"
    recorded = store(shop).get_payment(payment.id)
    assert sorted((t.type, t.state) for t in recorded.transactions) == [
        (T.AUTHORIZATION, S.SUCCESS), (T.CHARGE, S.SUCCESS)]
    assert len(store(shop).payments_of_cart(cart_id)) == 1
    assert all(call.request.method == "GET" for call in stripe_mock.calls)  # never a charge
    first = browser.get(f"/orders/{cart_id}")
    second = browser.get(f"/orders/{cart_id}")
    assert first.status_code == second.status_code == 200
    assert len(store(shop).list_orders()) == 1


def test_return_trusts_the_payment_intent_not_the_query(browser, shop, stripe_mock) -> None:
    cart_id = paid_cart(browser)
    payment = add_payment(shop, cart_id)
    pinned_intent(stripe_mock, payment, "requires_payment_method")
    response = browser.get(return_url(cart_id, payment, redirect_status="succeeded"))
    assert response.status_code == 200
    page = text(response)
    assert "Your payment was not completed" in page and 'href="/pay"' in page
    assert store(shop).get_payment(payment.id).transactions == payment.transactions
    assert store(shop).find_order_by_cart(cart_id) is None


def test_return_processing_shows_pending(browser, shop, stripe_mock) -> None:
    cart_id = paid_cart(browser)
    payment = add_payment(shop, cart_id)
    pinned_intent(stripe_mock, payment, "processing", amount_received=0)
    response = browser.get(return_url(cart_id, payment, redirect_status="processing"))
    assert response.status_code == 200
    assert "Your payment is being processed" in text(response) and f'href="/orders/{cart_id}"' in text(response)
    assert browser.get(f"/orders/{cart_id}/status").get_json()["paymentState"] == "Processing"


@pytest.mark.parametrize("status", ["requires_payment_method", "canceled", "requires_action"])
def test_return_failed_offers_to_try_again(browser, shop, stripe_mock, status) -> None:
    cart_id = paid_cart(browser)
    payment = add_payment(shop, cart_id)
    pinned_intent(stripe_mock, payment, status)
    response = browser.get(return_url(cart_id, payment, redirect_status="failed"))
    assert response.status_code == 200 and "Try again" in text(response)
    assert browser.cart_id() == cart_id


def test_return_refuses_a_payment_intent_of_another_payment(browser, shop, stripe_mock) -> None:
    cart_id = paid_cart(browser)
    payment = add_payment(shop, cart_id)
    pinned_intent(stripe_mock, payment, "succeeded", metadata={"ct_payment_id": str(uuid.uuid4())})
    assert browser.get(return_url(cart_id, payment)).status_code == 404
    assert store(shop).get_payment(payment.id).transactions == payment.transactions


def test_return_for_foreign_or_unknown_carts_is_not_found(browser, shop, stripe_mock) -> None:
    cart_id = paid_cart(browser)
    payment = add_payment(shop, cart_id)
    foreign_cart = paid_cart(Browser(shop))
    foreign_payment = add_payment(shop, foreign_cart, pi_id="pi_foreign")
    urls = [
        return_url(foreign_cart, foreign_payment),                 # someone else's cart
        return_url(foreign_cart, payment),                         # my payment, their cart id
        return_url(cart_id, foreign_payment),                      # their payment, my cart id
        return_url(cart_id, payment, paymentReference=str(uuid.uuid4())),
        return_url(cart_id, payment, payment_intent="pi_other"),   # not this payment's PaymentIntent
        "/return",
        f"/return?paymentReference={payment.id}",
    ]
    for url in urls:
        response = browser.get(url)
        assert response.status_code == 404, url
        assert response.mimetype == "text/html"
    assert not stripe_mock.calls


# -- security ------------------------------------------------------------------------------


def test_csp_and_security_headers_on_every_shop_response(browser) -> None:
    for url in ("/", "/products/stoneware-mug", "/cart", "/products/nope", "/admin/login", "/static/css/shop.css"):
        response = browser.get(url)
        assert response.headers["Content-Security-Policy"] == STRIPE_CSP, url
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


def test_sandbox_policy_allows_no_stripe_host() -> None:
    policy = content_security_policy(sandbox=True)
    assert "stripe.com" not in policy and "googleapis" not in policy
    assert policy == (
        "default-src 'self'; script-src 'self'; frame-src 'self'; connect-src 'self'; img-src 'self' data:; "
        "style-src 'self'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'; object-src 'none'")


def test_session_cookie_flags(browser) -> None:
    response = browser.add("stoneware-mug", 1)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie


def test_plain_http_runs_can_turn_secure_cookies_off(sqlite_url) -> None:
    app = build_shop(sqlite_url, SESSION_COOKIE_SECURE="false")
    cookie = Browser(app).add("stoneware-mug", 1).headers["Set-Cookie"]
    assert "Secure" not in cookie and "HttpOnly" in cookie


def visit_everything(browser: Browser, shop: Flask) -> list[Any]:
    """Every page of the shop and the back office, in a filled-in state."""
    responses_seen = [browser.get("/"), browser.get("/cart")]
    responses_seen += [browser.get(f"/products/{p.slug}") for p in PRODUCTS]
    responses_seen.append(browser.add("stoneware-mug", "0"))
    browser.add("stoneware-mug", 2)
    responses_seen += [browser.get("/cart"), browser.get("/checkout"), browser.checkout(email="bad")]
    browser.checkout()
    responses_seen.append(browser.get("/pay"))
    cart_id = browser.cart_id()
    responses_seen.append(browser.get(f"/orders/{cart_id}"))
    payment = add_payment(shop, cart_id, states=((T.AUTHORIZATION, S.SUCCESS), (T.CHARGE, S.SUCCESS)))
    responses_seen += [browser.get(f"/orders/{cart_id}"), browser.get("/nope", headers={"Accept": "text/html"})]
    responses_seen += [browser.get("/admin/login"), browser.post("/admin/login", {"password": "wrong"})]
    browser.post("/admin/login", {"password": ADMIN_PASSWORD})
    responses_seen += [browser.get("/admin/"), browser.get(f"/admin/payments/{payment.id}")]
    return responses_seen


def test_no_inline_script_or_style_on_any_page(browser, shop) -> None:
    for response in visit_everything(browser, shop):
        page = text(response)
        found = audit(page)
        assert not found.inline_scripts, response.request.path
        assert not found.inline_styles, response.request.path
        assert not found.event_handlers, response.request.path


def test_no_secret_is_ever_rendered(browser, shop) -> None:
    for response in visit_everything(browser, shop):
        page = text(response)
        for secret in (SECRET_KEY, FLASK_SECRET, ADMIN_PASSWORD):
            assert secret not in page, response.request.path
        assert "sk_test" not in page


def test_forms_without_csrf_token_are_refused(browser) -> None:
    browser.add("stoneware-mug", 2)
    before = snapshot(browser)
    attempts = [
        ("/products/stoneware-mug/add", {"quantity": "1"}),
        ("/cart/items/MUG-STONE-01", {"quantity": "5"}),
        ("/cart/items/MUG-STONE-01/remove", {}),
        ("/checkout", checkout_form()),
        ("/admin/login", {"password": ADMIN_PASSWORD}),
    ]
    for url, data in attempts:
        for token in (None, "forged-token"):
            form = dict(data) if token is None else {**data, "csrf_token": token}
            response = browser.post(url, form, csrf=False)
            assert response.status_code == 400, url
            assert response.mimetype == "text/html"
            assert "Reload the page and try again" in text(response)
    assert snapshot(browser) == before
    with browser.client.session_transaction() as session:
        assert "admin" not in session


def test_connector_api_routes_are_exempt_from_csrf_and_keep_json_errors(browser) -> None:
    response = browser.client.post("/payments", json={})
    assert response.status_code == 401 and response.is_json


def test_shop_errors_are_html_never_json(browser) -> None:
    cases = [browser.get("/products/nope"), browser.get("/products/stoneware-mug/add"), browser.post("/cart", {}),
             browser.client.delete("/checkout"), browser.get("/orders/x/status/nope", headers={"Accept": "text/html"})]
    assert [r.status_code for r in cases] == [404, 405, 405, 405, 404]
    for response in cases:
        assert response.mimetype == "text/html" and "<h1>" in text(response)


def test_uncaught_errors_are_an_html_500(sqlite_url, monkeypatch) -> None:
    shop = build_shop(sqlite_url, PROPAGATE_EXCEPTIONS=False)
    browser = Browser(shop)
    browser.add("stoneware-mug", 1)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(store(shop), "update_cart", broken)
    response = browser.add("stoneware-mug", 1)
    assert response.status_code == 500 and response.mimetype == "text/html"
    assert "Something went wrong on our side" in text(response) and "boom" not in text(response)


def test_secret_key_is_required_in_production(sqlite_url, monkeypatch) -> None:
    from demo_shop import create_app
    from flask_psp_connector import ConfigurationError

    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="SECRET_KEY"):
        create_app({"PSP_DATABASE_URL": sqlite_url, "STRIPE_SECRET_KEY": SECRET_KEY})


def test_generated_secret_key_is_shared_through_the_instance_folder(tmp_path) -> None:
    from demo_shop import _instance_secret

    first = _instance_secret(tmp_path / "instance")
    assert len(first) == 64 and _instance_secret(tmp_path / "instance") == first
    assert (tmp_path / "instance" / "secret_key").stat().st_mode & 0o077 == 0
    assert [p.name for p in (tmp_path / "instance").iterdir()] == ["secret_key"]


# -- sandbox mode -----------------------------------------------------------------------------


def test_sandbox_mode_banner_policy_and_stripe_js_stand_in(sqlite_url) -> None:
    shop = build_shop(sqlite_url, PSP_SANDBOX=True, STRIPE_API_BASE="http://127.0.0.1:9")
    browser = Browser(shop)
    home = browser.get("/")
    assert home.headers["Content-Security-Policy"] == content_security_policy(sandbox=True)
    page = text(home)
    assert "Sandbox mode is on." in page and "4242 4242 4242 4242" in page
    assert "STRIPE_SECRET_KEY" in page and "STRIPE_PUBLISHABLE_KEY" in page
    paid_cart(browser)
    sources = audit(text(browser.get("/pay"))).script_sources
    assert sources[0] == "/psp-assets/sandbox/stripe.js"
    assert not any("stripe.com" in source for source in sources)


def test_outside_sandbox_no_sandbox_file_is_referenced(browser, shop) -> None:
    for response in visit_everything(browser, shop):
        assert "/sandbox/" not in text(response)
        assert "Sandbox mode" not in text(response)


# -- PostgreSQL --------------------------------------------------------------------------------


def test_order_flow_on_each_database(database_url, stripe_mock) -> None:
    shop = build_shop(database_url)
    browser = Browser(shop)
    cart_id = paid_cart(browser, quantity=3)
    payment = add_payment(shop, cart_id, pi_id="pi_pg")
    pinned_intent(stripe_mock, payment, "succeeded")
    assert browser.get(return_url(cart_id, payment)).status_code == 303
    assert browser.get(return_url(cart_id, payment)).status_code == 303
    status = browser.get(f"/orders/{cart_id}/status").get_json()
    order = store(shop).find_order_by_cart(cart_id)
    assert status["orderNumber"] == order.order_number and status["paymentState"] == "Paid" and status["final"]
    assert order.total_price.cent_amount == 5400 + 490 + 1119  # (5400 + 490) * 19% = 1119.1
    assert store(shop).get_cart(cart_id).state == CartState.ORDERED
    assert len(store(shop).payments_of_cart(cart_id)) == 1
    shop.extensions["psp_connector"].database.dispose()
