"""Customer accounts in the demo shop: sign up, sign in, sign out, the account page."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import responses
from flask import Flask
from sqlalchemy import select, update

from demo_shop.accounts import accounts_table
from flask_psp_connector import LineItemDraft
from flask_psp_connector.domain.payment import TransactionState, TransactionType
from tests.conftest import STRIPE_API
from tests.shop_support import Browser, add_payment, audit, build_shop, checkout_form, store

PASSWORD = "a long enough secret"
GENERIC_FAILURE = "The email or password is not right."


def text(response: Any) -> str:
    return response.get_data(as_text=True)


def sign_up(browser: Browser, email: str = "jane@example.test", password: str = PASSWORD, **fields: Any) -> Any:
    response = browser.post("/account/sign-up", {"email": email, "name": "Jane Doe", "password": password,
                                                 "confirm": password, **fields})
    browser._token = None  # a new session carries a new CSRF token
    return response


def sign_in(browser: Browser, email: str = "jane@example.test", password: str = PASSWORD, **kwargs: Any) -> Any:
    response = browser.post("/account/sign-in", {"email": email, "password": password}, **kwargs)
    browser._token = None
    return response


def sign_out(browser: Browser) -> Any:
    response = browser.post("/account/sign-out", {"sign-out-csrf_token": browser.token()})
    browser._token = None
    return response


def session_value(browser: Browser, key: str) -> Any:
    with browser.client.session_transaction() as session:
        return session.get(key)


def account_row(shop: Flask, email: str) -> Any:
    with store(shop).database.transaction() as db:
        return db.execute(select(accounts_table).where(accounts_table.c.email == email)).first()


def customer_order(shop: Flask, customer_id: str) -> Any:
    """A paid order of the customer's (cart, payment and order in the store)."""
    cart = store(shop).create_cart("EUR", customer_id=customer_id, customer_email="x@example.test",
                                   line_items=[LineItemDraft("mug", "Stoneware mug", 1, 1800)])
    add_payment(shop, cart.id, pi_id=f"pi_{uuid.uuid4().hex[:12]}",
                states=((TransactionType.AUTHORIZATION, TransactionState.SUCCESS),))
    return store(shop).create_order(cart.id)


# -- sign up ------------------------------------------------------------------------


def test_sign_up_creates_a_customer_and_signs_in(browser: Browser, shop: Flask) -> None:
    page = browser.get("/account/sign-up")
    assert page.status_code == 200 and 'name="password"' in text(page)

    response = sign_up(browser, email="  Jane@Example.TEST ")
    assert response.status_code == 303 and response.headers["Location"] == "/account"
    row = account_row(shop, "jane@example.test")
    assert row is not None and row.password_hash.startswith("scrypt:")
    assert PASSWORD not in row.password_hash
    customer = store(shop).get_customer(row.customer_id)
    assert customer is not None and customer.email == "jane@example.test" and customer.name == "Jane Doe"
    assert session_value(browser, "customer_id") == customer.id
    home = text(browser.get("/"))
    assert ">Account</a>" in home and ">Sign in</a>" not in home


def test_an_email_has_one_account_whatever_its_case(browser: Browser, shop: Flask) -> None:
    assert sign_up(browser).status_code == 303
    other = Browser(shop)
    response = sign_up(other, email="JANE@example.test")
    assert response.status_code == 400
    assert "We could not create an account with these details" in text(response)
    assert session_value(other, "customer_id") is None
    with store(shop).database.transaction() as db:
        assert len(db.execute(select(accounts_table)).all()) == 1


@pytest.mark.parametrize(("fields", "message"), [
    ({"password": "short", "confirm": "short"}, "Use 8 to 128 characters for your password."),
    ({"confirm": "something else entirely"}, "The two passwords differ."),
    ({"email": "not-an-email"}, "Enter a valid email address"),
])
def test_sign_up_form_errors(browser: Browser, fields: dict[str, str], message: str) -> None:
    response = sign_up(browser, **fields)
    assert response.status_code == 400 and message in text(response)
    assert session_value(browser, "customer_id") is None


def test_sign_up_and_sign_in_need_the_csrf_token(browser: Browser) -> None:
    form = {"email": "jane@example.test", "password": PASSWORD, "confirm": PASSWORD}
    assert browser.post("/account/sign-up", form, csrf=False).status_code == 400
    assert account_row(browser.app, "jane@example.test") is None
    assert sign_up(browser).status_code == 303
    assert sign_out(browser).status_code == 303
    assert sign_in(browser, csrf=False).status_code == 400
    assert session_value(browser, "customer_id") is None


# -- sign in and out -----------------------------------------------------------------


def test_sign_in_and_out(browser: Browser, shop: Flask) -> None:
    sign_up(browser)
    assert sign_out(browser).status_code == 303
    assert session_value(browser, "customer_id") is None
    assert ">Sign in</a>" in text(browser.get("/"))

    response = sign_in(browser, email="JANE@example.test")
    assert response.status_code == 303 and response.headers["Location"] == "/account"
    account = browser.get("/account")
    assert account.status_code == 200 and "jane@example.test" in text(account)


def test_a_wrong_password_and_an_unknown_email_fail_alike(browser: Browser) -> None:
    sign_up(browser)
    sign_out(browser)
    wrong = sign_in(browser, password="not the password")
    unknown = sign_in(browser, email="nobody@example.test")
    for response in (wrong, unknown):
        assert response.status_code == 401 and GENERIC_FAILURE in text(response)
    assert session_value(browser, "customer_id") is None


def test_sign_out_is_a_post_with_csrf(browser: Browser) -> None:
    sign_up(browser)
    assert browser.get("/account/sign-out").status_code == 405
    assert browser.post("/account/sign-out", {}, csrf=False).status_code == 400
    assert session_value(browser, "customer_id") is not None
    assert sign_out(browser).status_code == 303
    assert session_value(browser, "customer_id") is None and browser.cart_id() is None


def test_sign_in_starts_a_new_session_that_keeps_the_cart(browser: Browser, shop: Flask) -> None:
    sign_up(browser, email="jane@example.test")
    sign_out(browser)
    browser.add("stoneware-mug", 2)
    assert browser.checkout(email="guest@example.test").status_code == 303
    guest_cart = browser.cart()
    assert guest_cart is not None and guest_cart.customer_id is None
    with browser.client.session_transaction() as session:
        session["planted"] = "by someone else"
        csrf_before = session.get("csrf_token")

    assert sign_in(browser).status_code == 303
    cart = browser.cart()
    row = account_row(shop, "jane@example.test")
    assert cart is not None and cart.id != guest_cart.id  # the old id (a fixated cookie's) gains nothing
    assert cart.customer_id == row.customer_id and cart.customer_email == "jane@example.test"
    assert [(i.sku, i.quantity) for i in cart.line_items] == [(guest_cart.line_items[0].sku, 2)]
    assert cart.total_price == guest_cart.total_price and cart.shipping_address == guest_cart.shipping_address
    assert store(shop).get_cart(guest_cart.id).customer_id is None
    assert session_value(browser, "planted") is None
    assert session_value(browser, "csrf_token") != csrf_before


def test_carts_started_while_signed_in_belong_to_the_customer(browser: Browser, shop: Flask) -> None:
    sign_up(browser)
    browser.add("stoneware-mug", 1)
    cart = browser.cart()
    assert cart is not None and cart.customer_id == account_row(shop, "jane@example.test").customer_id


def test_a_password_change_ends_other_sessions(browser: Browser, shop: Flask) -> None:
    sign_up(browser)
    with store(shop).database.transaction(write=True) as db:
        db.execute(update(accounts_table).values(password_hash="scrypt:changed"))
    assert ">Sign in</a>" in text(browser.get("/"))
    assert browser.get("/account").status_code == 303


@pytest.mark.parametrize(("target", "lands"), [
    ("/cart", "/cart"),
    ("//evil.example/x", "/account"),
    ("https://evil.example/", "/account"),
    ("/\\evil.example", "/account"),
])
def test_sign_in_returns_only_to_this_site(browser: Browser, target: str, lands: str) -> None:
    sign_up(browser)
    sign_out(browser)
    response = browser.post("/account/sign-in", {"email": "jane@example.test", "password": PASSWORD},
                            query_string={"next": target})
    assert response.status_code == 303 and response.headers["Location"] == lands


# -- the account page ----------------------------------------------------------------


def test_the_account_page_needs_a_signed_in_customer(browser: Browser) -> None:
    response = browser.get("/account")
    assert response.status_code == 303 and response.headers["Location"] == "/account/sign-in?next=/account"


def test_the_account_page_lists_only_the_customers_orders_and_methods(browser: Browser, shop: Flask) -> None:
    sign_up(browser, email="jane@example.test")
    other = Browser(shop)
    sign_up(other, email="max@example.test")
    jane = account_row(shop, "jane@example.test").customer_id
    max_ = account_row(shop, "max@example.test").customer_id
    mine = customer_order(shop, jane)
    theirs = customer_order(shop, max_)
    store(shop).record_saved_payment_method(jane, "pm_jane", "visa", "4242", 12, 2031)
    store(shop).record_saved_payment_method(max_, "pm_max", "mastercard", "5454", 1, 2030)

    page = text(browser.get("/account"))
    assert mine.order_number in page and f"/orders/{mine.cart_id}" in page
    assert theirs.order_number not in page
    assert "Visa ending in 4242" in page and "12/2031" in page
    assert "ending in 5454" not in page
    html = audit(page)
    assert not html.inline_scripts and not html.event_handlers and not html.inline_styles


def test_the_order_page_is_open_to_its_customer_only(browser: Browser, shop: Flask) -> None:
    sign_up(browser, email="jane@example.test")
    order = customer_order(shop, account_row(shop, "jane@example.test").customer_id)
    elsewhere = Browser(shop)  # another device: no record of paying for this cart
    assert elsewhere.get(f"/orders/{order.cart_id}").status_code == 404
    sign_in(elsewhere)
    page = elsewhere.get(f"/orders/{order.cart_id}")
    assert page.status_code == 200 and order.order_number in text(page)
    assert elsewhere.get(f"/orders/{order.cart_id}/status").status_code == 200

    stranger = Browser(shop)
    sign_up(stranger, email="max@example.test")
    assert stranger.get(f"/orders/{order.cart_id}").status_code == 404
    assert stranger.get(f"/orders/{order.cart_id}/status").status_code == 404


def test_a_customer_removes_their_own_saved_method_only(browser: Browser, shop: Flask) -> None:
    sign_up(browser, email="jane@example.test")
    other = Browser(shop)
    sign_up(other, email="max@example.test")
    jane = account_row(shop, "jane@example.test").customer_id
    max_ = account_row(shop, "max@example.test").customer_id
    own = store(shop).record_saved_payment_method(jane, "pm_jane", "visa", "4242", 12, 2031)
    foreign = store(shop).record_saved_payment_method(max_, "pm_max", "mastercard", "5454", 1, 2030)

    with responses.RequestsMock() as mock:  # no Stripe call for someone else's method
        response = browser.post(f"/account/payment-methods/{foreign.id}/remove")
        assert response.status_code == 404
    assert [m.id for m in store(shop).saved_payment_methods(max_)] == [foreign.id]

    with responses.RequestsMock() as mock:
        detach = mock.add(responses.POST, f"{STRIPE_API}/v1/payment_methods/pm_jane/detach",
                          json={"id": "pm_jane", "object": "payment_method", "customer": None})
        response = browser.post(f"/account/payment-methods/{own.id}/remove")
        assert response.status_code == 303 and detach.call_count == 1
    assert store(shop).saved_payment_methods(jane) == []
    assert "Removed the Visa card ending in 4242." in text(browser.get("/account"))


def test_removing_a_method_needs_csrf_and_a_customer(browser: Browser, shop: Flask) -> None:
    sign_up(browser)
    jane = account_row(shop, "jane@example.test").customer_id
    own = store(shop).record_saved_payment_method(jane, "pm_jane", "visa", "4242", 12, 2031)
    assert browser.post(f"/account/payment-methods/{own.id}/remove", csrf=False).status_code == 400
    sign_out(browser)
    response = browser.post(f"/account/payment-methods/{own.id}/remove")
    assert response.status_code == 303 and "/account/sign-in" in response.headers["Location"]
    assert len(store(shop).saved_payment_methods(jane)) == 1


# -- tables and well-known files --------------------------------------------------------


def test_the_accounts_table_lives_and_dies_with_the_store_schema(database_url: str) -> None:
    shop = build_shop(database_url)
    browser = Browser(shop)
    assert sign_up(browser).status_code == 303
    assert account_row(shop, "jane@example.test") is not None
    store(shop).database.dispose()


def test_apple_pay_domain_association(sqlite_url: str) -> None:
    unset = build_shop(sqlite_url).test_client()
    assert unset.get("/.well-known/apple-developer-merchantid-domain-association").status_code == 404
    shop = build_shop(sqlite_url, STRIPE_APPLE_PAY_WELL_KNOWN="7B227073704964...")
    response = shop.test_client().get("/.well-known/apple-developer-merchantid-domain-association")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    assert response.get_data(as_text=True) == "7B227073704964..."


def test_checkout_email_of_a_signed_in_customer(browser: Browser) -> None:
    sign_up(browser)
    browser.add("stoneware-mug", 1)
    page = text(browser.get("/checkout"))
    assert 'value="jane@example.test"' in page
    assert browser.post("/checkout", checkout_form(email="jane@example.test")).status_code == 303
