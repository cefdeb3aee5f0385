"""The connector's routes on a hostile day: NUL characters, JSON nested to the parser's
limit, undecodable credentials, tokens that are not JWTs and signed events whose fields
are nonsense. Each is a clear answer in the route's own shape, never a 500."""

from __future__ import annotations

import base64
import logging
import time
from typing import Any

import pytest
import responses
from flask import Flask

from flask_psp_connector.domain.payment import TransactionType
from tests.conftest import AppFactory, open_checkout
from tests.conftest import bearer as oauth_bearer
from tests.gateway_support import CALLBACK_URL, SHARED_SECRET
from tests.gateway_support import post as post_gateway
from tests.webhook_support import SECRETS, charge, event, intent, post_event, refund, sign, stored_payment, summary

JWKS_URL = "https://auth.example.test/.well-known/jwks.json"


@pytest.fixture
def app(make_app: AppFactory, database_url: str) -> Flask:
    return make_app(PSP_DATABASE_URL=database_url, STRIPE_WEBHOOK_SIGNING_SECRET=",".join(SECRETS),
                    COMMERCELAYER_SHARED_SECRET=SHARED_SECRET, COMMERCELAYER_CALLBACK_URL=CALLBACK_URL)


def store(app: Flask) -> Any:
    return app.extensions["psp_connector"].platform


def assert_upstream_400(response: Any) -> None:
    assert response.status_code == 400, response.get_data(as_text=True)
    body = response.get_json()
    assert body["statusCode"] == 400 and body["errors"][0]["message"] == body["message"]


def nested(depth: int) -> str:
    """A JSON object whose value nests ``depth`` levels (100k levels fit the 256 KiB limit)."""
    return '{"a":' + "[" * (depth - 1) + "]" * (depth - 1) + "}"


# -- 5. NUL characters and deep JSON ----------------------------------------------------


@pytest.mark.parametrize(("method", "path", "body"), [
    ("POST", "/confirmPayments/ab%00cd", {"paymentIntent": "pi_123"}),
    ("GET", "/config-element/pay%00ment", None),
    ("POST", "/operations/payment-intents/ab%00cd", {"actions": [{"action": "cancelPayment"}]}),
    ("GET", "/operations/config?x=%00", None),
])
def test_nul_in_a_processor_path_is_a_400(app: Flask, method: str, path: str, body: Any) -> None:
    _cart, session_id = open_checkout(app)
    headers = {"X-Session-Id": session_id, **oauth_bearer(app)}
    response = app.test_client().open(path, method=method, headers=headers, json=body)
    assert_upstream_400(response)


@pytest.mark.parametrize("depth", [30, 1_000, 100_000])
@pytest.mark.parametrize("path", ["/payments", "/confirmPayments/some-payment"])
def test_deep_json_on_processor_routes_is_a_400(app: Flask, path: str, depth: int) -> None:
    _cart, session_id = open_checkout(app)
    response = app.test_client().post(path, data=nested(depth), content_type="application/json",
                                      headers={"X-Session-Id": session_id})
    assert_upstream_400(response)


def test_a_nul_in_a_processor_json_body_is_a_400(app: Flask) -> None:
    _cart, session_id = open_checkout(app)
    response = app.test_client().post("/confirmPayments/x", json={"paymentIntent": "pi_1\x00"},
                                      headers={"X-Session-Id": session_id})
    assert_upstream_400(response)


@pytest.mark.parametrize("depth", [30, 1_000, 100_000])
def test_deep_json_in_a_signed_webhook_is_a_400(app: Flask, depth: int) -> None:
    payload = nested(depth)
    response = app.test_client().post("/stripe/webhooks", data=payload, content_type="application/json",
                                      headers={"Stripe-Signature": sign(payload)})
    assert response.status_code == 400 and response.mimetype == "text/plain"


@pytest.mark.parametrize("depth", [30, 1_000, 100_000])
def test_deep_json_in_a_signed_commerce_layer_request_is_a_400(app: Flask, depth: int) -> None:
    response = post_gateway(app.test_client(), "authorize", {}, body=nested(depth).encode())
    body = response.get_json()
    assert body["success"] is False
    if depth > 32:  # refused before parsing; shallower ones are merely not a JSON:API document
        assert response.status_code == 400 and body["data"]["error"]["code"] == "bad_request"
    else:
        assert response.status_code == 422 and body["data"]["error"]["code"] == "invalid_payload"


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", None])
def test_deep_json_on_the_hantera_ingress_is_a_400_in_its_shape(make_app: AppFactory, content_type: Any) -> None:
    app = make_app(HANTERA_API_URL="https://core.hantera.test", HANTERA_CLIENT_ID="c", HANTERA_CLIENT_SECRET="s",
                   HANTERA_JOB_SECRET="j")
    response = app.test_client().post("/gateways/hantera/ingress/commerce/carts/cart1/payment/stripe",
                                      data=nested(100_000), content_type=content_type)
    assert response.status_code == 400
    assert set(response.get_json()) == {"errors"}


def test_an_unsigned_deep_commerce_layer_request_is_refused_for_its_signature(app: Flask) -> None:
    response = post_gateway(app.test_client(), "authorize", {}, body=nested(1_000).encode(), signature=None)
    assert response.status_code == 401


@pytest.mark.parametrize("credentials", [b"\xff\xfe:secret", b"client:\xe9\xff", b"\x00:\x00", b"no-colon-\xff"])
def test_undecodable_basic_credentials_on_the_token_endpoint_are_a_401(app: Flask, credentials: bytes) -> None:
    header = "Basic " + base64.b64encode(credentials).decode()
    response = app.test_client().post("/oauth/token", data={"grant_type": "client_credentials"},
                                      headers={"Authorization": header}, base_url="https://localhost")
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"


def test_a_nul_in_the_token_form_is_a_400(app: Flask) -> None:
    response = app.test_client().post("/oauth/token", data={"grant_type": "client_credentials", "client_id": "a\x00",
                                                            "client_secret": "b"}, base_url="https://localhost")
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_request"


# -- 6. a bearer that is not a JWT never waits on the network ---------------------------


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "x" * 20_000, "eyJhbGciOiJub25lIn0.eyJ4IjoxfQ.",
                                   "eyJhbGciOiJIUzI1NiJ9.eyJ4IjoxfQ.c2ln", "é.é.é"])
@pytest.mark.parametrize("path", ["/operations/status", "/operations/payment-components"])
def test_a_bearer_that_is_not_a_jwt_is_refused_before_any_key_fetch(
    app: Flask, stripe_mock: responses.RequestsMock, path: str, token: str
) -> None:
    stripe_mock.get(JWKS_URL, body=ConnectionError("unreachable"))
    started = time.monotonic()
    response = app.test_client().get(path, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401, response.get_data(as_text=True)
    assert response.get_json()["errors"][0]["code"] == "invalid_token"
    assert not stripe_mock.calls and time.monotonic() - started < 1


# -- 7. signed events whose fields are nonsense ------------------------------------------


def _refund_event(pi_id: str, amount: Any, **fields: Any) -> dict[str, Any]:
    body = refund("re_hostile", pi_id, 0)
    body.update(amount=amount, **fields)
    return event("refund.created", body)


@pytest.mark.parametrize(("name", "build"), [
    ("negative refund", lambda pi, pid: _refund_event(pi, -500)),
    ("boolean refund", lambda pi, pid: _refund_event(pi, True)),
    ("float refund", lambda pi, pid: _refund_event(pi, 12.5)),
    ("huge refund", lambda pi, pid: _refund_event(pi, 10**30)),
    ("NUL in the refund id", lambda pi, pid: _refund_event(pi, 100, id="re_\x00x")),
    ("5,000-character event id", lambda pi, pid: {**_refund_event(pi, 100), "id": "evt_" + "x" * 5000}),
    ("NUL in the event id", lambda pi, pid: {**_refund_event(pi, 100), "id": "evt_\x00"}),
    ("huge succeeded amount", lambda pi, pid: event("payment_intent.succeeded",
                                                    intent(pi, pid, status="succeeded", amount=10**30, received=10**30))),
    ("NUL in metadata", lambda pi, pid: event("payment_intent.succeeded",
                                              intent(pi, pid + "\x00", status="succeeded", received=3000))),
    ("NUL in the shipping name", lambda pi, pid: event("payment_intent.succeeded", intent(
        pi, pid, status="succeeded", received=3000,
        shipping={"name": "J\x00", "address": {"line1": "x", "city": "y", "postal_code": "1", "country": "DE"}}))),
    ("bad currency", lambda pi, pid: event("charge.refunded", charge(pi, refunds=[refund("re_1", pi, 100)],
                                                                     currency="e\x01r"))),
    ("embedded refund with a negative amount", lambda pi, pid: event("charge.refunded", charge(
        pi, refunds=[{**refund("re_2", pi, 100), "amount": -1}]))),
    ("300-character event type", lambda pi, pid: {**_refund_event(pi, 100), "type": "refund." + "x" * 300}),
    ("200-character method type", lambda pi, pid: event("charge.succeeded", charge(
        pi, payment_method_details={"type": "c" * 200}))),
])
def test_a_malformed_signed_event_is_acknowledged_logged_and_has_no_effect(
    app: Flask, caplog: pytest.LogCaptureFixture, name: str, build: Any
) -> None:
    cart_id, payment_id, pi_id = stored_payment(app)
    before = summary(store(app).get_payment(payment_id))
    with caplog.at_level(logging.WARNING, "flask_psp_connector"):
        response = post_event(app.test_client(), build(pi_id, payment_id))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert summary(store(app).get_payment(payment_id)) == before
    assert store(app).find_order_by_cart(cart_id) is None
    assert any("malformed" in record.getMessage() for record in caplog.records), name


def test_a_sound_refund_event_still_applies(app: Flask) -> None:
    _cart, payment_id, pi_id = stored_payment(app)
    post_event(app.test_client(), event("payment_intent.succeeded", intent(pi_id, payment_id, status="succeeded",
                                                                           received=3000)))
    assert post_event(app.test_client(), event("refund.created", refund("re_ok", pi_id, 500))).status_code == 200
    refunds = [t for t in store(app).get_payment(payment_id).transactions if t.type == TransactionType.REFUND]
    assert [(t.interaction_id, t.amount.cent_amount) for t in refunds] == [("re_ok", 500)]


@pytest.mark.parametrize("offset", [-301, 301, 365 * 24 * 3600])
def test_signatures_dated_outside_the_tolerance_are_refused_both_ways(app: Flask, offset: int) -> None:
    _cart, payment_id, pi_id = stored_payment(app)
    body = event("payment_intent.succeeded", intent(pi_id, payment_id, status="succeeded", received=3000))
    response = post_event(app.test_client(), body, timestamp=int(time.time()) + offset)
    assert response.status_code == 400 and "tolerance" in response.get_data(as_text=True)
    assert store(app).find_order_by_cart(_cart) is None


def test_a_signature_a_little_ahead_of_our_clock_is_accepted(app: Flask) -> None:
    cart_id, payment_id, pi_id = stored_payment(app)
    body = event("payment_intent.succeeded", intent(pi_id, payment_id, status="succeeded", received=3000))
    assert post_event(app.test_client(), body, timestamp=int(time.time()) + 30).status_code == 200
    assert store(app).find_order_by_cart(cart_id) is not None


# -- 11. headers the document constrains ------------------------------------------------


@pytest.mark.parametrize(("header", "value"), [
    ("x-express-customer-session", "false"), ("x-express-customer-session", "1"),
    ("x-express-checkout", "yes"), ("x-express-checkout", ""),
])
def test_express_flags_outside_their_documented_values_are_refused(
    app: Flask, stripe_mock: responses.RequestsMock, header: str, value: str
) -> None:
    _cart, session_id = open_checkout(app)
    response = app.test_client().get("/payments", headers={"X-Session-Id": session_id, header: value})
    assert_upstream_400(response)
    assert response.get_json()["errors"][0] == {
        "code": "InvalidField", "field": header, "location": "headers",
        "message": response.get_json()["message"]}
    assert not stripe_mock.calls


def test_long_texts_no_effect_reads_do_not_make_an_event_malformed(app: Flask) -> None:
    _cart, payment_id, pi_id = stored_payment(app)
    post_event(app.test_client(), event("payment_intent.succeeded", intent(pi_id, payment_id, status="succeeded",
                                                                           received=3000)))
    body = event("charge.dispute.created", {
        "id": "du_long", "object": "dispute", "amount": 3000, "currency": "eur", "status": "needs_response",
        "charge": f"ch_{pi_id[3:]}", "payment_intent": pi_id, "metadata": {},
        "evidence": {"uncategorized_text": "x" * 20_000}})
    assert post_event(app.test_client(), body).status_code == 200
    chargebacks = [t for t in store(app).get_payment(payment_id).transactions
                   if t.type == TransactionType.CHARGEBACK]
    assert [t.interaction_id for t in chargebacks] == ["du_long"]
