"""Express Checkout routes, /payments with the express headers, and saving after a webhook."""

from __future__ import annotations

import itertools
import json
from typing import Any
from urllib.parse import parse_qsl

import pytest
import responses
from flask import Flask

from flask_psp_connector.errors import ConfigurationError
from tests.conftest import STRIPE_API, open_checkout
from tests.processor.test_checkout_pinned import CANCEL_URL, PI_URL, cancel_intent, store, stripe_calls
from tests.webhook_support import SECRETS, event, intent, post_event

SHOP, OTHER = "https://shop.example.test", "https://other.example.test"
_numbers = itertools.count(1)


def echo_intent(request: Any) -> tuple[int, dict[str, str], str]:
    """Stripe's answer to a PaymentIntent create: a new id each time, the params echoed."""
    fields = dict(parse_qsl(request.body))
    metadata = {k[9:-1]: v for k, v in fields.items() if k.startswith("metadata[")}
    pi_id = f"pi_express{next(_numbers):06d}"
    return 200, {}, json.dumps({
        "id": pi_id, "object": "payment_intent", "client_secret": f"{pi_id}_secret_x", "amount": int(fields["amount"]),
        "currency": fields["currency"], "status": "requires_payment_method", "metadata": metadata,
        "customer": fields.get("customer"), "setup_future_usage": fields.get("setup_future_usage")})


def created(mock: responses.RequestsMock) -> list[dict[str, str]]:
    return [dict(parse_qsl(c.request.body)) for c in stripe_calls(mock)
            if c.request.method == "POST" and c.request.url == PI_URL]


# -- POST /express-config -----------------------------------------------------------------


@pytest.mark.parametrize(("allowed", "origin", "status"), [
    ("", None, 200),
    ("", "https://anywhere.test", 200),
    (f"{SHOP},{OTHER}", SHOP, 200),
    (f"{SHOP} , {OTHER}", OTHER, 200),
    (f"{SHOP},{OTHER}", "https://evil.test", 403),
    (f"{SHOP},{OTHER}", None, 403),
    (SHOP, f"{SHOP}/", 403),
])
def test_express_config_honours_the_origin_allow_list(make_app, allowed, origin, status) -> None:
    app = make_app(ALLOWED_ORIGINS=allowed)
    response = app.test_client().post("/express-config", json={}, headers={"Origin": origin} if origin else {})
    assert response.status_code == status
    if status == 403:
        assert response.get_json() == {"error": "Forbidden", "message": "CORS origin not allowed."}
        assert "Access-Control-Allow-Origin" not in response.headers
    else:
        assert response.get_json()["publishableKey"] == "pk_test_connector"
        if origin:
            assert response.headers["Access-Control-Allow-Origin"] == (origin if allowed else "*")


def test_express_config_body(make_app) -> None:
    app = make_app(
        STRIPE_APPEARANCE_EXPRESS_CHECKOUT='{"theme":"night"}',
        STRIPE_APPEARANCE_PAYMENT_ELEMENT='{"theme":"flat"}',
        STRIPE_EXPRESS_ELEMENT_OPTIONS='{"buttonType":{"applePay":"buy"},"buttonHeight":48,"paymentMethods":{}}',
        STRIPE_CAPTURE_METHOD="manual",
    )
    body = app.test_client().post("/express-config").get_json()
    assert body == {"environment": "TEST", "publishableKey": "pk_test_connector", "captureMethod": "manual",
                    "appearance": '{"theme":"night"}',
                    "expressElementOptions": '{"buttonHeight": 48, "buttonType": {"applePay": "buy"}}'}
    plain = make_app().test_client().post("/express-config").get_json()
    assert plain == {"environment": "TEST", "publishableKey": "pk_test_connector", "captureMethod": "automatic"}


def test_express_config_preflight_from_an_allowed_origin(make_app) -> None:
    app = make_app(ALLOWED_ORIGINS=SHOP)
    response = app.test_client().options("/express-config", headers={
        "Origin": SHOP, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == SHOP
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    refused = app.test_client().options("/express-config", headers={
        "Origin": OTHER, "Access-Control-Request-Method": "POST"})
    assert "Access-Control-Allow-Origin" not in refused.headers


@pytest.mark.parametrize(("key", "value"), [
    ("STRIPE_EXPRESS_ELEMENT_OPTIONS", "[1, 2]"),
    ("STRIPE_EXPRESS_ELEMENT_OPTIONS", '"buy"'),
    ("STRIPE_EXPRESS_ELEMENT_OPTIONS", "{"),
    ("STRIPE_APPEARANCE_EXPRESS_CHECKOUT", "[]"),
    ("STRIPE_SAVED_PAYMENT_METHODS_CONFIG", "[]"),
    ("STRIPE_SAVED_PAYMENT_METHODS_CONFIG", '{"payment_method_save_usage":"always"}'),
])
def test_express_and_saving_settings_are_validated_at_startup(make_app, key, value) -> None:
    with pytest.raises(ConfigurationError, match=key):
        make_app(**{key: value})


# -- GET /express-payment-data ------------------------------------------------------------


def money(cents: int) -> dict[str, Any]:
    return {"centAmount": cents, "currencyCode": "EUR", "fractionDigits": 2}


def payment_data(app: Flask, session_id: str) -> Any:
    return app.test_client().get("/express-payment-data", headers={"X-Session-Id": session_id})


def test_express_payment_data_lists_subtotal_shipping_and_tax(app) -> None:
    _, session_id = open_checkout(app, shipping_amount=495, tax_amount=570, shipping_method_name="Express")
    assert payment_data(app, session_id).get_json() == {
        "totalPrice": money(4065), "currencyCode": "EUR",
        "lineItems": [
            {"name": "Subtotal", "amount": money(3000), "type": "SUBTOTAL"},
            {"name": "Express", "amount": money(495), "type": "SHIPPING"},
            {"name": "Tax", "amount": money(570), "type": "TAX"},
        ],
    }


def test_express_payment_data_follows_the_cart_as_the_sheet_changes_it(app) -> None:
    cart_id, session_id = open_checkout(app)
    assert payment_data(app, session_id).get_json()["lineItems"] == [
        {"name": "Subtotal", "amount": money(3000), "type": "SUBTOTAL"}]
    store(app).update_cart(cart_id, shipping_amount=300)
    body = payment_data(app, session_id).get_json()
    assert body["totalPrice"] == money(3300)
    assert body["lineItems"][1] == {"name": "Shipping", "amount": money(300), "type": "SHIPPING"}


def test_express_payment_data_needs_a_session(app) -> None:
    response = app.test_client().get("/express-payment-data")
    assert response.status_code == 401
    assert response.get_json()["errors"][0]["code"] == "invalid_token"


# -- /payments with the express headers ----------------------------------------------------------


@pytest.fixture
def customer_app(make_app: Any) -> Flask:
    return make_app(STRIPE_PAYMENT_INTENT_SETUP_FUTURE_USAGE="off_session")


def linked_checkout(app: Flask) -> tuple[str, str, str]:
    platform = store(app)
    customer = platform.create_customer("jane@example.test", "Jane Doe")
    platform.set_stripe_customer_id(customer.id, "cus_jane")
    cart_id, session_id = open_checkout(app, customer_id=customer.id)
    return customer.id, cart_id, session_id


def pay(app: Flask, session_id: str, method: str = "get", **headers: str) -> Any:
    return getattr(app.test_client(), method)("/payments", headers={"X-Session-Id": session_id, **headers})


@pytest.mark.parametrize(("headers", "with_customer"), [
    ({}, True),
    ({"x-express-checkout": "true"}, False),
    ({"x-express-checkout": "1"}, False),
    ({"x-express-checkout": "true", "x-express-customer-session": "true"}, True),
    ({"x-express-checkout": "1", "x-express-customer-session": "true"}, True),
])  # other values of the two headers are refused (see test_connector_hardening)
@pytest.mark.parametrize("method", ["get", "post"])
def test_customer_and_future_usage_follow_upstreams_rule(customer_app, stripe_mock, headers, with_customer, method) -> None:
    customer_id, cart_id, session_id = linked_checkout(customer_app)
    stripe_mock.add_callback(responses.POST, PI_URL, callback=echo_intent)

    assert pay(customer_app, session_id, method, **headers).status_code == 200

    [params] = created(stripe_mock)
    assert "shipping" not in " ".join(params)
    assert params["metadata[ct_customer_id]"] == customer_id
    if with_customer:
        assert (params["customer"], params["setup_future_usage"]) == ("cus_jane", "off_session")
    else:
        assert "customer" not in params and "setup_future_usage" not in params


def test_a_guest_never_gets_a_customer_or_future_usage(customer_app, stripe_mock) -> None:
    _, session_id = open_checkout(customer_app)
    stripe_mock.add_callback(responses.POST, PI_URL, callback=echo_intent)
    pay(customer_app, session_id, **{"x-express-checkout": "true", "x-express-customer-session": "true"})
    pay(customer_app, session_id)
    [params] = created(stripe_mock)
    assert "customer" not in params and "setup_future_usage" not in params


def test_retries_reuse_the_payment_intent_of_their_own_kind(customer_app, stripe_mock) -> None:
    _, cart_id, session_id = linked_checkout(customer_app)
    stripe_mock.add_callback(responses.POST, PI_URL, callback=echo_intent)
    express = {"x-express-checkout": "true"}

    first = pay(customer_app, session_id, **express).get_json()
    again = pay(customer_app, session_id, "post", **express).get_json()
    normal = pay(customer_app, session_id).get_json()
    normal_again = pay(customer_app, session_id).get_json()
    express_again = pay(customer_app, session_id, **express).get_json()

    assert first["paymentReference"] == again["paymentReference"] == express_again["paymentReference"]
    assert normal["paymentReference"] == normal_again["paymentReference"] != first["paymentReference"]
    params = created(stripe_mock)
    assert len(params) == 2
    keys = [c.request.headers["Idempotency-Key"] for c in stripe_calls(stripe_mock) if c.request.url == PI_URL]
    assert keys == [f"psp-payment-intent-{first['paymentReference']}", f"psp-payment-intent-{normal['paymentReference']}"]
    assert [p.intent_variant for p in store(customer_app).payments_of_cart(cart_id)] == [
        "", "customer=cus_jane;sfu=off_session"]


def test_a_cart_changed_in_the_express_sheet_is_charged_its_new_amount(customer_app, stripe_mock) -> None:
    _, cart_id, session_id = linked_checkout(customer_app)
    stripe_mock.add_callback(responses.POST, PI_URL, callback=echo_intent)
    stripe_mock.add_callback(responses.POST, CANCEL_URL, callback=cancel_intent)
    express = {"x-express-checkout": "true"}
    before = pay(customer_app, session_id, **express).get_json()
    store(customer_app).update_cart(cart_id, shipping_amount=495, shipping_method_name="Express")
    after = pay(customer_app, session_id, **express).get_json()
    assert after["paymentReference"] != before["paymentReference"]
    assert [p["amount"] for p in created(stripe_mock)] == ["3000", "3495"]


def test_a_known_customer_without_link_gets_one_before_the_payment_intent(customer_app, stripe_mock) -> None:
    customer = store(customer_app).create_customer("jane@example.test")
    _, session_id = open_checkout(customer_app, customer_id=customer.id)
    stripe_mock.add(responses.GET, f"{STRIPE_API}/v1/customers/search", json={"object": "search_result", "data": []})
    stripe_mock.add(responses.POST, f"{STRIPE_API}/v1/customers", json={
        "id": "cus_made", "object": "customer", "metadata": {"ct_customer_id": customer.id}})
    stripe_mock.add_callback(responses.POST, PI_URL, callback=echo_intent)
    pay(customer_app, session_id)
    assert created(stripe_mock)[0]["customer"] == "cus_made"
    assert store(customer_app).get_customer(customer.id).stripe_customer_id == "cus_made"


def test_config_element_offers_future_usage_only_to_known_customers(customer_app) -> None:
    _, _, session_id = linked_checkout(customer_app)
    _, guest_session = open_checkout(customer_app)
    client = customer_app.test_client()
    body = client.get("/config-element/payment", headers={"X-Session-Id": session_id}).get_json()
    guest = client.get("/config-element/payment", headers={"X-Session-Id": guest_session}).get_json()
    assert body["setupFutureUsage"] == "off_session"
    assert "setupFutureUsage" not in guest


def test_future_usage_falls_back_to_the_saved_methods_config(make_app, stripe_mock) -> None:
    app = make_app(STRIPE_SAVED_PAYMENT_METHODS_CONFIG='{"payment_method_save":"enabled",'
                                                      '"payment_method_save_usage":"on_session"}')
    assert app.extensions["psp_connector"].settings["STRIPE_PAYMENT_INTENT_SETUP_FUTURE_USAGE"] == "on_session"
    explicit = make_app(STRIPE_SAVED_PAYMENT_METHODS_CONFIG='{"payment_method_save_usage":"on_session"}',
                        STRIPE_PAYMENT_INTENT_SETUP_FUTURE_USAGE="none")
    assert explicit.extensions["psp_connector"].settings["STRIPE_PAYMENT_INTENT_SETUP_FUTURE_USAGE"] is None


# -- the webhook records a saved method ------------------------------------------------------------


@pytest.fixture
def webhook_app(make_app: Any) -> Flask:
    return make_app(STRIPE_WEBHOOK_SIGNING_SECRET=",".join(SECRETS))


def test_payment_intent_succeeded_records_the_saved_method_once(webhook_app, stripe_mock) -> None:
    customer_id, cart_id, session_id = linked_checkout(webhook_app)
    stripe_mock.add_callback(responses.POST, PI_URL, callback=echo_intent)
    body = pay(webhook_app, session_id).get_json()
    [payment] = store(webhook_app).payments_of_cart(cart_id)
    stripe_mock.add(responses.GET, f"{STRIPE_API}/v1/payment_methods/pm_card_visa", json={
        "id": "pm_card_visa", "object": "payment_method", "type": "card", "customer": "cus_jane",
        "allow_redisplay": "always", "card": {"brand": "visa", "last4": "4242", "exp_month": 4, "exp_year": 2031}})
    paid = event("payment_intent.succeeded", intent(
        payment.interface_id, body["paymentReference"], status="succeeded", received=3000, customer="cus_jane",
        latest_charge=None, metadata={"ct_payment_id": body["paymentReference"], "ct_customer_id": customer_id}))

    for _ in range(2):
        assert post_event(webhook_app.test_client(), paid).status_code == 200

    [saved] = store(webhook_app).saved_payment_methods(customer_id)
    assert (saved.stripe_payment_method_id, saved.last4, saved.exp_year) == ("pm_card_visa", "4242", 2031)
    assert store(webhook_app).find_order_by_cart(cart_id) is not None


def test_a_guest_payment_intent_succeeded_costs_no_stripe_call(webhook_app, stripe_mock) -> None:
    cart_id, session_id = open_checkout(webhook_app)
    stripe_mock.add_callback(responses.POST, PI_URL, callback=echo_intent)
    body = pay(webhook_app, session_id).get_json()
    [payment] = store(webhook_app).payments_of_cart(cart_id)
    before = len(stripe_calls(stripe_mock))
    paid = event("payment_intent.succeeded", intent(payment.interface_id, body["paymentReference"], status="succeeded",
                                                   received=3000, latest_charge=None))
    assert post_event(webhook_app.test_client(), paid).status_code == 200
    assert len(stripe_calls(stripe_mock)) == before


def test_a_transient_stripe_failure_while_saving_asks_stripe_to_retry(webhook_app, stripe_mock) -> None:
    customer_id, cart_id, session_id = linked_checkout(webhook_app)
    stripe_mock.add_callback(responses.POST, PI_URL, callback=echo_intent)
    body = pay(webhook_app, session_id).get_json()
    [payment] = store(webhook_app).payments_of_cart(cart_id)
    pm_url = f"{STRIPE_API}/v1/payment_methods/pm_card_visa"
    stripe_mock.add(responses.GET, pm_url, status=503, json={"error": {"type": "api_error", "message": "down"}})
    paid = event("payment_intent.succeeded", intent(
        payment.interface_id, body["paymentReference"], status="succeeded", received=3000, customer="cus_jane",
        latest_charge=None, setup_future_usage="off_session",
        metadata={"ct_payment_id": body["paymentReference"], "ct_customer_id": customer_id}))
    assert post_event(webhook_app.test_client(), paid).status_code >= 500
    stripe_mock.replace(responses.GET, pm_url, json={
        "id": "pm_card_visa", "object": "payment_method", "type": "card", "customer": "cus_jane",
        "card": {"brand": "visa", "last4": "4242", "exp_month": 4, "exp_year": 2031}})
    assert post_event(webhook_app.test_client(), paid).status_code == 200
    assert [m.stripe_payment_method_id for m in store(webhook_app).saved_payment_methods(customer_id)] == ["pm_card_visa"]
