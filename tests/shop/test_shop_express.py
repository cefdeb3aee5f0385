"""Express Checkout in the demo shop: shipping methods, the wallet sheet's JSON endpoints
and the totals the connector then reports for the sheet."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from demo_shop.pricing import EXPRESS, STANDARD, method_of, quote, quotes
from flask_psp_connector.domain.model import CartState
from tests.shop_support import Browser, audit, store

MUG, KETTLE = 1800, 5900  # catalog prices of stoneware-mug and pour-over-kettle, in cents

FRANCE = {"country": "FR", "postal_code": "75001", "city": "Paris", "state": ""}
GERMANY = {"country": "DE", "postal_code": "10115", "city": "Berlin", "state": ""}
FULL_FRANCE = {"line1": "8 Rue de Rivoli", "line2": "Appartement 4", "city": "Paris", "state": "",
               "postal_code": "75001", "country": "FR"}


def call(browser: Browser, endpoint: str, body: Any, *, csrf: bool = True) -> Any:
    """POST JSON to an express endpoint the way psp-express.js does."""
    headers = {"X-CSRFToken": browser.token()} if csrf else {}
    return browser.client.post(f"/express/{endpoint}", data=json.dumps(body), headers=headers,
                               content_type="application/json")


def sheet_data(browser: Browser, session_id: str) -> dict[str, Any]:
    """What the connector tells the wallet sheet about the session's cart."""
    response = browser.get("/express-payment-data", headers={"X-Session-Id": session_id})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def prepared(browser: Browser, quantity: int = 2) -> dict[str, Any]:
    """Fill the shopping cart with mugs and click the wallet button on the cart page."""
    browser.add("stoneware-mug", quantity)
    response = call(browser, "prepare", {"source": "cart"})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def chosen_method(page: str) -> str:
    """The value of the checked shipping method radio of the checkout page."""
    checked = [tag for tag in re.findall(r"<input[^>]*>", page) if 'name="shipping_method"' in tag and " checked" in tag]
    assert len(checked) == 1, checked
    return re.search(r'value="([^"]*)"', checked[0]).group(1)


def rate_amounts(rates: list[dict[str, Any]]) -> dict[str, int]:
    return {rate["id"]: rate["amount"] for rate in rates}


# -- shipping methods -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subtotal", "country", "standard", "express"),
    [
        (3600, "DE", 490, 1290),
        (3600, "FR", 990, 2490),
        (3600, None, 490, 1290),    # no address yet: quoted for Germany
        (6000, "DE", 0, 1290),      # standard ships free from €60, express never
        (11800, "SE", 0, 2490),
    ],
)
def test_each_method_is_priced_per_destination(subtotal: int, country: str | None, standard: int, express: int) -> None:
    assert [(q.method, q.shipping) for q in quotes(subtotal, country)] == [(STANDARD, standard), (EXPRESS, express)]


def test_vat_is_charged_on_the_goods_and_the_chosen_shipping() -> None:
    priced = quote(3600, "FR", EXPRESS)
    assert (priced.shipping, priced.tax) == (2490, (3600 + 2490) * 2000 // 10000)
    assert quote(3600, "FR") == quote(3600, "FR", STANDARD)


def test_a_cart_without_a_known_method_ships_standard() -> None:
    assert method_of(None) is STANDARD
    assert method_of("Teleport") is STANDARD
    assert method_of(EXPRESS.name) is EXPRESS


def test_checkout_lets_the_buyer_choose_the_shipping_method(browser: Browser) -> None:
    browser.add("stoneware-mug", 2)
    assert chosen_method(browser.get("/checkout").get_data(as_text=True)) == "standard"
    assert browser.checkout(shipping_method="express").status_code == 303
    cart = browser.cart()
    assert cart.shipping_method_name == "Express shipping"
    assert (cart.shipping_amount, cart.tax_amount) == (1290, 929)
    assert "Express shipping" in browser.get("/cart").get_data(as_text=True)
    # Changing the cart keeps the method; the checkout form shows it chosen.
    browser.add("stoneware-mug", 1)
    assert browser.cart().shipping_method_name == "Express shipping"
    assert chosen_method(browser.get("/checkout").get_data(as_text=True)) == "express"


def test_checkout_without_a_method_ships_standard_and_refuses_an_unknown_one(browser: Browser) -> None:
    browser.add("stoneware-mug", 2)
    assert browser.checkout(shipping_method="overnight").status_code == 400
    assert browser.cart().shipping_address is None
    assert browser.checkout().status_code == 303
    cart = browser.cart()
    assert (cart.shipping_method_name, cart.shipping_amount) == ("Standard shipping", 490)


# -- the element on the pages -------------------------------------------------------------


def test_cart_and_product_pages_carry_the_element_with_server_amounts(browser: Browser) -> None:
    browser.add("stoneware-mug", 2)
    cart = browser.cart()
    for url, amount, body in [
        ("/cart", cart.total_price.cent_amount, {"source": "cart"}),
        ("/products/pour-over-kettle", KETTLE + 490 + 1214,
         {"source": "product", "product": "pour-over-kettle"}),
    ]:
        page = browser.get(url).get_data(as_text=True)
        assert f'data-amount="{amount}"' in page, url
        assert json.loads(re.search(r"data-prepare-body='([^']*)'", page).group(1)) == body, url
        found = audit(page)
        assert found.script_sources[-2:] == ["https://js.stripe.com/v3/", "/psp-assets/psp-express.js"]
        assert not found.inline_scripts and not found.event_handlers


def test_the_browser_module_is_served(browser: Browser) -> None:
    response = browser.get("/psp-assets/psp-express.js")
    assert response.status_code == 200
    assert "export async function mountExpress" in response.get_data(as_text=True)


# -- prepare --------------------------------------------------------------------------------


def test_prepare_opens_a_session_for_the_shopping_cart(browser: Browser) -> None:
    answer = prepared(browser)
    cart = browser.cart()
    assert answer["cartId"] == cart.id and answer["completeUrl"] == f"/orders/{cart.id}"
    assert answer["amount"] == cart.total_price.cent_amount == 3600 + 490 + 777
    assert rate_amounts(answer["shippingRates"]) == {"standard": 490, "express": 1290}
    assert answer["shippingRates"][0]["displayName"] == "Standard shipping"
    assert "DE" in answer["allowedShippingCountries"] and "US" not in answer["allowedShippingCountries"]
    assert sheet_data(browser, answer["sessionId"])["totalPrice"]["centAmount"] == 3600 + 490 + 777
    assert browser.get(answer["completeUrl"]).status_code == 200  # this browser may see the order


def test_prepare_for_a_product_pays_a_cart_of_its_own(browser: Browser) -> None:
    browser.add("stoneware-mug", 1)
    shopping = browser.cart()
    response = call(browser, "prepare", {"source": "product", "product": "pour-over-kettle", "quantity": "2"})
    assert response.status_code == 200
    answer = response.get_json()
    bought = store(browser.app).get_cart(answer["cartId"])
    assert [(i.sku, i.quantity) for i in bought.line_items] == [("KET-POUR-01", 2)]
    assert rate_amounts(answer["shippingRates"]) == {"standard": 0, "express": 1290}
    assert browser.cart() == shopping  # the shopping cart is left alone


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"source": "wishlist"}, 400, "invalid_request"),
        ({}, 400, "invalid_request"),
        ({"source": "product", "product": "no-such-thing"}, 400, "unknown_product"),
        ({"source": "product", "product": ["stoneware-mug"]}, 400, "unknown_product"),
        ({"source": "product", "product": "stoneware-mug", "quantity": 0}, 400, "invalid_quantity"),
        ({"source": "product", "product": "stoneware-mug", "quantity": 100}, 400, "invalid_quantity"),
        ({"source": "product", "product": "stoneware-mug", "quantity": 1.5}, 400, "invalid_quantity"),
        ({"source": "product", "product": "stoneware-mug", "quantity": True}, 400, "invalid_quantity"),
        ({"source": "product", "product": "stoneware-mug", "quantity": "２"}, 400, "invalid_quantity"),
        ({"source": "cart"}, 409, "cart_empty"),
    ],
)
def test_prepare_refuses_what_it_cannot_sell(browser: Browser, body: dict[str, Any], status: int, code: str) -> None:
    response = call(browser, "prepare", body)
    assert (response.status_code, response.get_json()["code"]) == (status, code)
    assert response.get_json()["message"]


def test_endpoints_want_a_json_object(browser: Browser) -> None:
    for body in (["source", "cart"], "cart", None):
        response = call(browser, "prepare", body)
        assert response.status_code == 400 and response.is_json
    response = browser.client.post("/express/prepare", data={"source": "cart"}, headers={"X-CSRFToken": browser.token()})
    assert response.status_code == 400 and response.get_json()["code"] == "invalid_request"


def test_every_endpoint_requires_the_csrf_token(browser: Browser) -> None:
    answer = prepared(browser)
    before = browser.cart()
    for endpoint, body in [("prepare", {"source": "cart"}), ("shipping-address", {"address": FRANCE}),
                           ("shipping-rate", {"shippingRateId": "express"}),
                           ("details", {"email": "a@example.test", "shippingAddress": {"name": "A B", "address": FULL_FRANCE}})]:
        response = call(browser, endpoint, body, csrf=False)
        assert response.status_code == 400 and response.get_json()["code"] == "csrf", endpoint
        forged = browser.client.post(f"/express/{endpoint}", data=json.dumps(body), content_type="application/json",
                                     headers={"X-CSRFToken": "forged"})
        assert forged.status_code == 400 and forged.get_json()["code"] == "csrf", endpoint
    assert browser.cart() == before
    assert sheet_data(browser, answer["sessionId"])["totalPrice"]["centAmount"] == before.total_price.cent_amount


def test_sheet_endpoints_need_a_prepared_checkout(browser: Browser) -> None:
    browser.add("stoneware-mug", 1)
    for endpoint, body in [("shipping-address", {"address": FRANCE}), ("shipping-rate", {"shippingRateId": "express"})]:
        response = call(browser, endpoint, body)
        assert (response.status_code, response.get_json()["code"]) == (409, "no_checkout")


# -- address and shipping rate -------------------------------------------------------------------


def test_an_address_in_the_sheet_reprices_the_cart_for_its_country(browser: Browser) -> None:
    answer = prepared(browser)
    response = call(browser, "shipping-address", {"name": "Jeanne Martin", "address": FRANCE})
    assert response.status_code == 200
    body = response.get_json()
    assert body["shippingRateId"] == "standard"
    assert [(r["id"], r["amount"]) for r in body["shippingRates"]] == [("standard", 990), ("express", 2490)]
    assert body["shippingRates"][1]["deliveryEstimate"] == {"minimum": {"unit": "business_day", "value": 1},
                                                             "maximum": {"unit": "business_day", "value": 1}}
    cart = browser.cart()
    address = cart.shipping_address
    assert (address.country, address.city, address.postal_code) == ("FR", "Paris", "75001")
    assert (cart.shipping_method_name, cart.shipping_amount, cart.tax_amount) == ("Standard shipping", 990, 918)
    data = sheet_data(browser, answer["sessionId"])
    assert data["totalPrice"]["centAmount"] == 3600 + 990 + 918 == body["amount"]


def test_a_new_address_starts_again_from_the_first_rate(browser: Browser) -> None:
    prepared(browser)
    call(browser, "shipping-address", {"address": FRANCE})
    call(browser, "shipping-rate", {"shippingRateId": "express"})
    body = call(browser, "shipping-address", {"address": GERMANY}).get_json()
    assert body["shippingRateId"] == "standard" and body["shippingRates"][0]["id"] == "standard"
    assert (browser.cart().shipping_method_name, browser.cart().shipping_amount) == ("Standard shipping", 490)


def test_changing_the_rate_changes_the_total_the_sheet_shows(browser: Browser) -> None:
    answer = prepared(browser)
    call(browser, "shipping-address", {"address": FRANCE})
    response = call(browser, "shipping-rate", {"shippingRateId": "express", "amount": 1})
    assert response.status_code == 200
    cart = browser.cart()
    assert (cart.shipping_method_name, cart.shipping_amount, cart.tax_amount) == ("Express shipping", 2490, 1218)
    data = sheet_data(browser, answer["sessionId"])
    assert data["totalPrice"]["centAmount"] == 3600 + 2490 + 1218 == response.get_json()["amount"]
    lines = {line["type"]: (line["name"], line["amount"]["centAmount"]) for line in data["lineItems"]}
    assert lines["SHIPPING"] == ("Express shipping", 2490)
    assert sum(line["amount"]["centAmount"] for line in data["lineItems"]) == data["totalPrice"]["centAmount"]
    assert rate_amounts(response.get_json()["shippingRates"]) == {"express": 2490, "standard": 990}
    assert response.get_json()["shippingRates"][0]["id"] == "express"  # the chosen one first


def test_nothing_the_browser_sends_sets_an_amount(browser: Browser) -> None:
    prepared(browser)
    call(browser, "shipping-address", {"address": {**GERMANY, "amount": 1}, "shippingRates": [{"id": "standard", "amount": 0}]})
    call(browser, "shipping-rate", {"shippingRateId": "express", "shippingRate": {"amount": 0}})
    cart = browser.cart()
    assert (cart.shipping_amount, cart.tax_amount, cart.total_price.cent_amount) == (1290, 929, 3600 + 1290 + 929)


@pytest.mark.parametrize(
    ("address", "code"),
    [
        ({"country": "US", "postal_code": "10118", "city": "New York", "state": "NY"}, "not_shippable"),
        ({"country": "de"} | {"postal_code": "<script>"}, "invalid_field"),
        ({"postal_code": "10115"}, "missing_field"),
        ({"country": "DE", "city": "x" * 81}, "invalid_field"),
        ({"country": "DE", "city": "Berlin\x00"}, "http_error"),  # NUL: refused before the route
        ({"country": 49}, "invalid_field"),
        ("DE", "invalid_request"),
    ],
)
def test_an_address_the_shop_cannot_use_is_refused(browser: Browser, address: Any, code: str) -> None:
    prepared(browser)
    before = browser.cart()
    response = call(browser, "shipping-address", {"address": address})
    assert (response.status_code, response.get_json()["code"]) == (400, code)
    assert browser.cart() == before


@pytest.mark.parametrize("rate", ["overnight", "", None, 7, "Express shipping"])
def test_only_offered_rates_can_be_chosen(browser: Browser, rate: Any) -> None:
    prepared(browser)
    call(browser, "shipping-address", {"address": FRANCE})
    before = browser.cart()
    response = call(browser, "shipping-rate", {"shippingRateId": rate})
    assert response.status_code == 400
    assert browser.cart() == before


def test_a_rate_needs_an_address_first(browser: Browser) -> None:
    prepared(browser)
    response = call(browser, "shipping-rate", {"shippingRateId": "express"})
    assert (response.status_code, response.get_json()["code"]) == (409, "no_address")


# -- final details ---------------------------------------------------------------------------


def details(email: str = "jeanne@example.test", **overrides: Any) -> dict[str, Any]:
    body = {
        "email": email,
        "shippingAddress": {"name": "Jeanne Martin", "address": FULL_FRANCE},
        "billingDetails": {"name": "Jeanne Martin", "email": email, "phone": "+33 1 23 45 67 89",
                           "address": {**FULL_FRANCE, "line2": ""}},
    }
    body.update(overrides)
    return body


def test_confirming_stores_the_full_addresses_and_email_at_the_same_price(browser: Browser) -> None:
    answer = prepared(browser)
    call(browser, "shipping-address", {"address": FRANCE})
    call(browser, "shipping-rate", {"shippingRateId": "express"})
    priced = browser.cart()
    response = call(browser, "details", details())
    assert response.status_code == 200 and response.get_json()["amount"] == priced.total_price.cent_amount
    cart = browser.cart()
    shipping = cart.shipping_address
    assert (shipping.first_name, shipping.last_name, shipping.street_name, shipping.additional_street_info,
            shipping.postal_code, shipping.city, shipping.country) == (
        "Jeanne", "Martin", "8 Rue de Rivoli", "Appartement 4", "75001", "Paris", "FR")
    assert cart.billing_address.phone == "+33 1 23 45 67 89" and cart.billing_address.additional_street_info == ""
    assert cart.customer_email == "jeanne@example.test"
    assert (cart.shipping_method_name, cart.total_price) == ("Express shipping", priced.total_price)
    assert sheet_data(browser, answer["sessionId"])["totalPrice"]["centAmount"] == priced.total_price.cent_amount


def test_billing_defaults_to_the_shipping_address(browser: Browser) -> None:
    prepared(browser)
    call(browser, "shipping-address", {"address": FRANCE})
    assert call(browser, "details", details(billingDetails={"email": "jeanne@example.test"})).status_code == 200
    assert browser.cart().billing_address == browser.cart().shipping_address


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (details(email="not-an-email"), 400, "invalid_email"),
        (details(email=""), 400, "missing_field"),
        (details(shippingAddress=None), 400, "invalid_request"),
        (details(shippingAddress={"name": "Jeanne Martin", "address": {**FULL_FRANCE, "line1": ""}}), 400, "missing_field"),
        (details(shippingAddress={"name": "", "address": FULL_FRANCE}), 400, "missing_field"),
        (details(shippingAddress={"name": "Sam Carter", "address": {**FULL_FRANCE, "country": "US"}}), 400, "not_shippable"),
        (details(billingDetails="Paris"), 400, "invalid_request"),
        (details(shippingAddress={"name": "Jane Doe", "address": {**FULL_FRANCE, "country": "DE", "postal_code": "10115"}}),
         409, "address_changed"),
    ],
)
def test_confirming_refuses_bad_details(browser: Browser, body: dict[str, Any], status: int, code: str) -> None:
    prepared(browser)
    call(browser, "shipping-address", {"address": FRANCE})
    before = browser.cart()
    response = call(browser, "details", body)
    assert (response.status_code, response.get_json()["code"]) == (status, code)
    assert browser.cart() == before


def test_a_paid_cart_cannot_be_changed_from_the_sheet(browser: Browser) -> None:
    prepared(browser)
    cart = browser.cart()
    store(browser.app).update_cart(cart.id, customer_email="x@example.test")  # someone else changed it
    call_after_change = call(browser, "shipping-address", {"address": FRANCE})
    assert call_after_change.status_code == 200  # re-read: the sheet works on the latest version
    with store(browser.app).database.transaction(write=True) as session:
        from flask_psp_connector.platforms.embedded.schema import CartRow

        session.get(CartRow, cart.id).state = CartState.ORDERED.value
    response = call(browser, "shipping-rate", {"shippingRateId": "express"})
    assert (response.status_code, response.get_json()["code"]) == (409, "no_checkout")
