"""The commercetools adapter: exact requests, retries, token renewal, failures, deploy, selection."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

import pytest
import requests
import responses
from flask import Flask

from flask_psp_connector import LineItemDraft, PSPConnector
from flask_psp_connector.errors import ConfigurationError
from flask_psp_connector.platforms.commercetools.custom_types import PAYMENT_TYPE_KEY
from flask_psp_connector.platforms.commercetools.inbox import EVENT_CONTAINER, FAILURE_CONTAINER
from flask_psp_connector.platforms.commercetools.mapping import cart_from_json
from flask_psp_connector.platforms.commercetools.orders import order_number
from flask_psp_connector.webhooks.events import HANDLED_EVENTS
from tests.conftest import SHIPPING, STRIPE_API
from tests.platforms.commercetools.test_commercetools_fake import (  # noqa: F401  (fixtures)
    API,
    AUTH,
    BASIC,
    CLIENT_SECRET,
    CT_CONFIG,
    PROJECT,
    SESSIONS,
    app,
    client,
    commercetools,
    error,
    make_app,
)
from tests.processor.test_checkout_pinned import PI_URL, echo_intent
from tests.webhook_support import SECRETS, charge, event, intent, post_event, refund, sign

BASE = f"{API}/{PROJECT}"
EXPAND = "expand=paymentInfo.payments%5B%2A%5D"


def ct_calls(mock: responses.RequestsMock) -> list[tuple[str, str, Any, str]]:
    """Every request to commercetools: method, URL, body (JSON, form or None), Authorization."""
    calls = []
    for call in mock.calls:
        request = call.request
        if request.url.startswith(STRIPE_API):
            continue
        body: Any = request.body
        if isinstance(body, bytes):
            body = body.decode()
        if body and request.headers.get("Content-Type", "").startswith("application/json"):
            body = json.loads(body)
        elif body:
            body = dict(parse_qsl(body))
        calls.append((request.method, request.url, body, request.headers.get("Authorization", "")))
    return calls


def checkout(fake: Any, **cart: Any) -> tuple[str, str]:
    created = fake.create_cart("EUR", line_items=[LineItemDraft("tee", "T-shirt", 2, 1500)],
                               customer_email="jane@example.test", shipping_address=SHIPPING, **cart)
    return created.id, fake.open_session(created.id, merchant_return_url="https://shop.test/return").id


def without_timestamps(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_timestamps(v) for k, v in value.items() if k != "timestamp"}
    if isinstance(value, (list, tuple)):
        return type(value)(without_timestamps(v) for v in value)
    return value


@pytest.fixture
def webhook_app(make_app) -> Flask:
    return make_app(STRIPE_WEBHOOK_SIGNING_SECRET=",".join(SECRETS))


# -- pinned requests --------------------------------------------------------------------


def test_payments_route_makes_exactly_these_requests(client, stripe_mock, commercetools) -> None:
    stripe_mock.add_callback(responses.POST, PI_URL, callback=echo_intent)
    cart_id, session_id = checkout(commercetools)

    body = client.get("/payments", headers={"X-Session-Id": session_id}).get_json()

    payment_id, token = body["paymentReference"], commercetools.access_tokens[-1]
    [payment] = commercetools.payments.values()
    cart = cart_from_json(commercetools.carts[cart_id])
    bearer = f"Bearer {token}"
    assert [without_timestamps(c) for c in ct_calls(stripe_mock)] == [
        ("POST", f"{AUTH}/oauth/token", {"grant_type": "client_credentials"}, BASIC),
        ("GET", f"{SESSIONS}/{PROJECT}/sessions/{session_id}", None, bearer),
        # the cart with its payments, read once: the payment is created for that version
        ("GET", f"{BASE}/carts/{cart_id}?{EXPAND}", None, bearer),
        ("POST", f"{BASE}/payments", {
            "key": payment_id,
            "amountPlanned": {"centAmount": 3000, "currencyCode": "EUR", "fractionDigits": 2},
            "interfaceId": body["sClientSecret"].split("_secret")[0],
            "paymentMethodInfo": {"paymentInterface": "checkout-stripe"},
            "transactions": [{"type": "Authorization", "state": "Initial", "interactionId": "pi_363000",
                              "amount": {"centAmount": 3000, "currencyCode": "EUR", "fractionDigits": 2}}],
            "custom": {"type": {"typeId": "type", "key": PAYMENT_TYPE_KEY},
                       "fields": {"stripeConnector_clientSecret": "pi_363000_secret_abc",
                                  "stripeConnector_cartFingerprint": cart.fingerprint,
                                  "stripeConnector_cartVersion": 1}},
        }, bearer),
        ("POST", f"{BASE}/carts/{cart_id}", {"version": 1, "actions": [
            {"action": "addPayment", "payment": {"typeId": "payment", "id": payment["id"]}}]}, bearer),
    ]
    assert body["merchantReturnUrl"] == "https://shop.test/return" and body["cartId"] == cart_id
    # the retry hands out the same PaymentIntent: its client secret is kept on the payment
    assert client.get("/payments", headers={"X-Session-Id": session_id}).get_json() == body
    assert len([c for c in stripe_mock.calls if c.request.url.startswith(PI_URL)]) == 1
    assert [c[1] for c in ct_calls(stripe_mock)].count(f"{AUTH}/oauth/token") == 1  # the token is reused


def test_config_element_and_confirm_payments_make_exactly_these_requests(client, stripe_mock, commercetools) -> None:
    stripe_mock.add_callback(responses.POST, PI_URL, callback=echo_intent)
    cart_id, session_id = checkout(commercetools)
    headers = {"X-Session-Id": session_id}
    stripe_mock.calls.reset()

    assert client.get("/config-element/payment", headers=headers).status_code == 200

    bearer = f"Bearer {commercetools.access_tokens[-1]}"
    assert [c[:2] for c in ct_calls(stripe_mock) if "/oauth/" not in c[1]] == [
        ("GET", f"{SESSIONS}/{PROJECT}/sessions/{session_id}"),
        ("GET", f"{BASE}/carts/{cart_id}?{EXPAND}"),
    ]
    payment_id = client.get("/payments", headers=headers).get_json()["paymentReference"]
    [payment] = commercetools.payments.values()
    metadata = {"cart_id": cart_id, "ct_project_key": PROJECT, "ct_payment_id": payment_id}
    stripe_mock.add(responses.GET, f"{PI_URL}/pi_363000", json=intent("pi_363000", payment_id, status="succeeded",
                                                                      received=3000, metadata=metadata))
    stripe_mock.calls.reset()

    answer = client.post(f"/confirmPayments/{payment_id}", json={"paymentIntent": "pi_363000"}, headers=headers)

    assert answer.get_json() == {"outcome": "approved"}
    assert [(c[0], c[1], c[3]) for c in ct_calls(stripe_mock)] == [
        ("GET", f"{SESSIONS}/{PROJECT}/sessions/{session_id}", bearer),
        # the session's cart with its payments, read once: the use case checks the payment
        # on it, and the transactions and the order are written on it
        ("GET", f"{BASE}/carts/{cart_id}?{EXPAND}", bearer),
        ("POST", f"{BASE}/payments/{payment['id']}", bearer),
        ("POST", f"{BASE}/orders?{EXPAND}", bearer),
    ]


def test_succeeded_webhook_makes_exactly_these_requests(webhook_app, stripe_mock, commercetools) -> None:
    client = webhook_app.test_client()
    stripe_mock.add_callback(responses.POST, PI_URL, callback=echo_intent)
    cart_id, session_id = checkout(commercetools)
    payment_id = client.get("/payments", headers={"X-Session-Id": session_id}).get_json()["paymentReference"]
    [payment] = commercetools.payments.values()
    [authorization] = payment["transactions"]
    stripe_mock.calls.reset()
    # the metadata the connector gives its PaymentIntents (see test_payments_route...)
    metadata = {"cart_id": cart_id, "ct_project_key": PROJECT, "ct_payment_id": payment_id}
    succeeded = event("payment_intent.succeeded", intent("pi_363000", payment_id, status="succeeded", received=3000,
                                                         metadata=metadata))

    assert post_event(client, succeeded).status_code == 200

    bearer = f"Bearer {commercetools.access_tokens[-1]}"
    money = {"centAmount": 3000, "currencyCode": "EUR", "fractionDigits": 2}
    assert [without_timestamps(c) for c in ct_calls(stripe_mock)] == [
        # the inbox, then the payment's cart with its payments (the cart named in the metadata
        # holds the payment), the payment's transactions, its order, the inbox entry. The cart
        # has an address, so Stripe is not asked for one.
        ("GET", f"{BASE}/custom-objects/{EVENT_CONTAINER}/{succeeded['id']}", None, bearer),
        ("GET", f"{BASE}/carts/{cart_id}?{EXPAND}", None, bearer),
        ("POST", f"{BASE}/payments/{payment['id']}", {"version": 1, "actions": [
            {"action": "changeTransactionState", "transactionId": authorization["id"], "state": "Success"},
            {"action": "addTransaction", "transaction": {"type": "Charge", "amount": money, "state": "Success",
                                                         "interactionId": "pi_363000"}},
        ]}, bearer),
        # settling on the cart as read (still the state paid for; its version named): the order
        ("POST", f"{BASE}/orders?{EXPAND}", {
            "cart": {"typeId": "cart", "id": cart_id}, "version": 2, "orderNumber": order_number(cart_id),
            "orderState": "Open", "shipmentState": "Pending", "paymentState": "Paid"}, bearer),
        ("POST", f"{BASE}/custom-objects", {"container": EVENT_CONTAINER, "key": succeeded["id"], "version": 0, "value": {
            "eventId": succeeded["id"], "type": "payment_intent.succeeded", "status": "processed",
            "paymentId": payment_id, "detail": "", "receivedAt": commercetools.objects[
                (EVENT_CONTAINER, succeeded["id"])]["value"]["receivedAt"]}}, bearer),
    ]
    assert [c.request.url for c in stripe_mock.calls if c.request.url.startswith(STRIPE_API)] == []


# -- conflicts, tokens, failures ----------------------------------------------------------


def test_a_409_is_decided_again_on_the_fresh_payment(webhook_app, stripe_mock, commercetools) -> None:
    client = webhook_app.test_client()
    stripe_mock.add_callback(responses.POST, PI_URL, callback=echo_intent)
    _, session_id = checkout(commercetools)
    assert client.get("/payments", headers={"X-Session-Id": session_id}).status_code == 200
    [payment] = commercetools.payments.values()

    def someone_else_writes_first(fake: Any) -> None:
        payment["transactions"].append({"id": "t-other", "type": "Refund", "state": "Pending", "interactionId": "re_x",
                                        "amount": {"centAmount": 100, "currencyCode": "EUR", "fractionDigits": 2}})
        payment["version"] += 1

    commercetools.on_next("POST", f"^/payments/{payment['id']}$", someone_else_writes_first)
    refunded = event("charge.refunded", charge("pi_363000", refunds=[refund("re_x", "pi_363000", 100)]))
    assert post_event(client, refunded).status_code == 200

    updates = [c for c in ct_calls(stripe_mock) if c[0] == "POST" and c[1] == f"{BASE}/payments/{payment['id']}"]
    assert [u[2]["version"] for u in updates] == [1, 2]
    assert [a["action"] for a in updates[1][2]["actions"]] == ["changeTransactionState"]
    assert [(t["type"], t["state"]) for t in payment["transactions"]] == [
        ("Authorization", "Initial"), ("Refund", "Success")]


def test_conflicts_beyond_the_bound_are_a_409_and_stripe_retries(webhook_app, stripe_mock, commercetools) -> None:
    client = webhook_app.test_client()
    stripe_mock.add_callback(responses.POST, PI_URL, callback=echo_intent)
    _, session_id = checkout(commercetools)
    payment_id = client.get("/payments", headers={"X-Session-Id": session_id}).get_json()["paymentReference"]
    [payment] = commercetools.payments.values()
    for _ in range(5):
        commercetools.on_next("POST", f"^/payments/{payment['id']}$", lambda fake: error(
            409, "ConcurrentModification", "different version", currentVersion=1))
    processing = event("payment_intent.processing", intent("pi_363000", payment_id, status="processing"))
    response = post_event(client, processing)
    assert response.status_code == 409 and response.get_json()["errors"][0]["code"] == "ConcurrentModification"
    assert [container for container, _ in commercetools.objects] == [FAILURE_CONTAINER]  # kept, not in the inbox
    platform = webhook_app.extensions["psp_connector"].platform
    [failure] = platform.event_failures()
    assert (failure.event_id, failure.attempts, failure.resolved) == (processing["id"], 1, False)
    assert json.loads(platform.stored_event(processing["id"])) == processing
    assert post_event(client, processing).status_code == 200
    assert [(t["type"], t["state"]) for t in payment["transactions"]] == [("Authorization", "Pending")]
    assert [f.resolved for f in platform.event_failures()] == [True]


def test_a_401_renews_the_token_once_and_repeats_the_request(client, stripe_mock, commercetools) -> None:
    _, session_id = checkout(commercetools)
    assert client.get("/config-element/payment", headers={"X-Session-Id": session_id}).status_code == 200
    commercetools.access_tokens.append("revoked-elsewhere")  # the connector's token is no longer valid

    response = client.get("/config-element/payment", headers={"X-Session-Id": session_id})

    assert response.status_code == 200
    token_calls = [c for c in ct_calls(stripe_mock) if c[1] == f"{AUTH}/oauth/token"]
    assert len(token_calls) == 2 and all(c[3] == BASIC for c in token_calls)
    statuses = [call.response.status_code for call in stripe_mock.calls if "/sessions/" in call.request.url]
    assert statuses == [200, 401, 200]


def test_wrong_client_credentials_are_a_502_without_the_secret(make_app, stripe_mock, commercetools, caplog) -> None:
    client = make_app(CTP_CLIENT_SECRET="wrong-secret").test_client()
    _, session_id = checkout(commercetools)
    response = client.get("/config-element/payment", headers={"X-Session-Id": session_id})
    assert response.status_code == 502
    assert response.get_json()["errors"][0]["code"] == "invalid_client"
    assert "wrong-secret" not in response.get_data(as_text=True) + caplog.text


def test_unknown_cart_is_a_404(client, commercetools) -> None:
    session_id = commercetools.open_session("9d9e8c1a-0000-4000-8000-000000000000").id
    response = client.get("/config-element/payment", headers={"X-Session-Id": session_id})
    assert response.status_code == 404
    assert response.get_json()["errors"][0] == {
        "code": "ResourceNotFound", "message": "Cart 9d9e8c1a-0000-4000-8000-000000000000 not found."}


@pytest.mark.parametrize(
    ("session", "status"),
    [({"state": "EXPIRED"}, 401), ({"activeCart": None}, 401), ("gone", 401)],
)
def test_inactive_sessions_are_refused(client, commercetools, session, status) -> None:
    _, session_id = checkout(commercetools)
    if session == "gone":
        del commercetools.sessions[session_id]
    else:
        commercetools.sessions[session_id].update(session)
    response = client.get("/payments", headers={"X-Session-Id": session_id})
    assert response.status_code == status
    assert response.get_json()["error_description"] == "Session is not active"


def test_commercetools_errors_keep_their_code_and_status_and_write_nothing_more(client, stripe_mock, commercetools) -> None:
    stripe_mock.add_callback(responses.POST, PI_URL, callback=echo_intent)
    cart_id, session_id = checkout(commercetools)
    commercetools.on_next("POST", "^/payments$", lambda fake: error(400, "InvalidInput", "Request body is invalid."))
    response = client.get("/payments", headers={"X-Session-Id": session_id})
    assert response.status_code == 400
    assert response.get_json() == {"message": "Request body is invalid.", "statusCode": 400, "errors": [
        {"code": "InvalidInput", "message": "Request body is invalid."}]}
    assert commercetools.payments == {} and commercetools.carts[cart_id]["version"] == 1


@pytest.mark.parametrize(
    ("answer", "status"),
    [(lambda fake: error(503, "ServiceUnavailable", "Try again later."), 503),
     (lambda fake: error(500, "General", "Write failed."), 500),
     (lambda fake: requests.ConnectionError("reset"), 503),
     (lambda fake: (200, {}, "<html>proxy</html>"), 502),
     (lambda fake: (200, {}, json.dumps({"id": "x", "version": "two"})), 502)],
)
def test_failures_during_a_webhook_are_5xx_apply_nothing_and_the_retry_applies(
        webhook_app, stripe_mock, commercetools, answer, status) -> None:
    client = webhook_app.test_client()
    stripe_mock.add_callback(responses.POST, PI_URL, callback=echo_intent)
    cart_id, session_id = checkout(commercetools)
    payment_id = client.get("/payments", headers={"X-Session-Id": session_id}).get_json()["paymentReference"]
    [payment] = commercetools.payments.values()
    commercetools.on_next("POST", f"^/payments/{payment['id']}$", answer)
    succeeded = event("payment_intent.succeeded", intent("pi_363000", payment_id, status="succeeded", received=3000))

    assert post_event(client, succeeded).status_code == status
    assert [t["state"] for t in payment["transactions"]] == ["Initial"]
    assert [c for c, _ in commercetools.objects] == [FAILURE_CONTAINER] and commercetools.orders == {}

    assert post_event(client, succeeded).status_code == 200
    assert [(t["type"], t["state"]) for t in payment["transactions"]] == [("Authorization", "Success"), ("Charge", "Success")]
    [order] = commercetools.orders.values()
    assert order["cart"]["id"] == cart_id and order["paymentState"] == "Paid"


@pytest.mark.parametrize(
    ("answer", "status", "code"),
    [(lambda fake: requests.ConnectionError("down"), 503, "ServiceUnavailable"),
     (lambda fake: (200, {}, "not json"), 502, "General"),
     (lambda fake: (200, {}, json.dumps({"id": "c", "version": 1, "lineItems": [{"quantity": 1.5}]})), 502, "General")],
)
def test_failures_on_checkout_routes_are_clear_and_write_nothing(client, stripe_mock, commercetools, answer, status,
                                                                 code) -> None:
    cart_id, session_id = checkout(commercetools)
    commercetools.on_next("GET", f"^/carts/{cart_id}$", answer)
    response = client.get("/payments", headers={"X-Session-Id": session_id})
    assert response.status_code == status
    assert response.get_json()["errors"][0]["code"] == code
    assert commercetools.payments == {}
    assert not [c for c in stripe_mock.calls if c.request.url.startswith(STRIPE_API)]


def test_session_service_unreachable_is_503_not_401(client, stripe_mock, commercetools) -> None:
    _, session_id = checkout(commercetools)
    commercetools.on_next("GET", f"^/sessions/{session_id}$", lambda fake: requests.Timeout("slow"))
    response = client.get("/payments", headers={"X-Session-Id": session_id})
    assert response.status_code == 503


# -- the inbox ---------------------------------------------------------------------------


def test_a_duplicate_event_changes_nothing(webhook_app, stripe_mock, commercetools) -> None:
    client = webhook_app.test_client()
    stripe_mock.add_callback(responses.POST, PI_URL, callback=echo_intent)
    _, session_id = checkout(commercetools)
    payment_id = client.get("/payments", headers={"X-Session-Id": session_id}).get_json()["paymentReference"]
    first = event("charge.refund.updated", refund("re_1", "pi_363000", 500))
    assert post_event(client, first).status_code == 200
    again = event("charge.refund.updated", refund("re_2", "pi_363000", 900), event_id=first["id"])
    assert post_event(client, again).status_code == 200
    [payment] = commercetools.payments.values()
    assert [t.get("interactionId") for t in payment["transactions"]] == ["pi_363000", "re_1"]
    assert [key for _, key in commercetools.objects] == [first["id"]]
    [receipt] = webhook_app.extensions["psp_connector"].platform.recent_events()
    assert (receipt.event_id, receipt.payment_id, receipt.status.value) == (first["id"], payment_id, "processed")


def test_a_refused_signature_reaches_no_commercetools_endpoint(webhook_app, stripe_mock, commercetools) -> None:
    payload = json.dumps(event("payment_intent.succeeded", intent("pi_1", None, status="succeeded")))
    response = webhook_app.test_client().post("/stripe/webhooks", data=payload,
                                              headers={"Stripe-Signature": sign(payload, secret="whsec_other")})
    assert response.status_code == 400
    assert ct_calls(stripe_mock) == []


# -- deploy -------------------------------------------------------------------------------


def test_post_deploy_and_pre_undeploy_manage_the_custom_types_idempotently(make_app, stripe_mock, commercetools) -> None:
    commercetools.types.clear()
    app = make_app(STRIPE_WEBHOOK_ID="we_1", PSP_PUBLIC_URL="https://shop.test")
    stripe_mock.add(responses.GET, f"{STRIPE_API}/v1/webhook_endpoints/we_1", json={
        "id": "we_1", "object": "webhook_endpoint", "url": "https://shop.test/stripe/webhooks",
        "enabled_events": sorted(HANDLED_EVENTS), "status": "enabled"})
    stripe_mock.add(responses.POST, f"{STRIPE_API}/v1/webhook_endpoints/we_1", json={"id": "we_1", "object": "webhook_endpoint"})
    runner = app.test_cli_runner()

    first = runner.invoke(args=["psp", "post-deploy"])
    assert first.exit_code == 0, first.output
    assert "Created custom type payment-connector-stripe-customer-id." in first.output
    assert sorted(commercetools.types) == ["payment-connector-stripe-customer-id", PAYMENT_TYPE_KEY]
    commercetools.types[PAYMENT_TYPE_KEY]["fieldDefinitions"] = []
    second = runner.invoke(args=["psp", "post-deploy"])
    assert "Custom type payment-connector-stripe-customer-id is up to date." in second.output
    assert f"Added 5 field(s) to custom type {PAYMENT_TYPE_KEY}." in second.output
    assert [f["name"] for f in commercetools.types[PAYMENT_TYPE_KEY]["fieldDefinitions"]] == [
        "stripeConnector_clientSecret", "stripeConnector_intentVariant", "stripeConnector_cartFingerprint",
        "stripeConnector_cartVersion", "stripeConnector_staleReason"]

    commercetools.on_next("DELETE", "^/types/key=payment-connector-stripe-customer-id$", lambda fake: error(
        400, "ReferenceExists", "Can not delete a type while it is referenced by at least one customer."))
    undeploy = runner.invoke(args=["psp", "pre-undeploy"])
    assert undeploy.exit_code == 0, undeploy.output
    assert "Kept custom type payment-connector-stripe-customer-id: resources still use it." in undeploy.output
    assert list(commercetools.types) == ["payment-connector-stripe-customer-id"]
    again = runner.invoke(args=["psp", "pre-undeploy"])
    assert f"Custom type {PAYMENT_TYPE_KEY} is not there." in again.output
    assert commercetools.types == {}


def test_without_the_payment_type_each_call_gets_its_own_payment_intent(client, stripe_mock, commercetools, caplog) -> None:
    commercetools.types.clear()
    stripe_mock.add_callback(responses.POST, PI_URL, callback=echo_intent)
    cart_id, session_id = checkout(commercetools)
    assert client.get("/payments", headers={"X-Session-Id": session_id}).status_code == 200
    assert "run `flask psp post-deploy`" in caplog.text
    [payment] = commercetools.payments.values()
    assert "custom" not in payment and commercetools.carts[cart_id]["paymentInfo"]["payments"][0]["id"] == payment["id"]


def test_operations_route_introspects_at_commercetools(app, client, stripe_mock, commercetools) -> None:
    stripe_mock.add_callback(responses.POST, PI_URL, callback=echo_intent)
    _, session_id = checkout(commercetools)
    payment_id = client.get("/payments", headers={"X-Session-Id": session_id}).get_json()["paymentReference"]
    commercetools.caller_tokens["caller-token"] = f"manage_checkout_payment_intents:{PROJECT}"
    stripe_mock.add(responses.POST, f"{PI_URL}/pi_363000/cancel", json={"id": "pi_363000", "object": "payment_intent",
                                                                         "status": "canceled"})
    [payment] = commercetools.payments.values()
    payment["transactions"][0]["state"] = "Success"
    response = client.post(f"/operations/payment-intents/{payment_id}", json={"actions": [{"action": "cancelPayment"}]},
                           headers={"Authorization": "Bearer caller-token"})
    assert response.get_json() == {"outcome": "approved"}
    [introspection] = [c for c in ct_calls(stripe_mock) if c[1] == f"{AUTH}/oauth/introspect"]
    assert introspection[2] == {"token": "caller-token"} and introspection[3] == BASIC
    assert [(t["type"], t["state"]) for t in payment["transactions"]] == [
        ("Authorization", "Failure"), ("CancelAuthorization", "Success")]
    refused = client.post(f"/operations/payment-intents/{payment_id}", json={"actions": [{"action": "cancelPayment"}]},
                          headers={"Authorization": "Bearer unknown"})
    assert refused.status_code == 401


# -- selection ----------------------------------------------------------------------------


def _platform_name(tmp_path: Any, **config: Any) -> str:
    tmp_path.mkdir()
    app = Flask("selection", instance_path=str(tmp_path))
    app.config.update(TESTING=True, PSP_DATABASE_URL=f"sqlite:///{tmp_path / 's.sqlite3'}", **config)
    PSPConnector(app)
    return type(app.extensions["psp_connector"].platform).__name__


def test_platform_selection(tmp_path, monkeypatch) -> None:
    for key in list(CT_CONFIG) + ["PSP_PLATFORM"]:
        monkeypatch.delenv(key, raising=False)
    assert _platform_name(tmp_path / "a", **CT_CONFIG) == "CommercetoolsPlatform"
    assert _platform_name(tmp_path / "b", **CT_CONFIG, PSP_PLATFORM="embedded") == "LocalPlatform"
    only_introspection = {k: v for k, v in CT_CONFIG.items() if k != "CTP_API_URL"}
    assert _platform_name(tmp_path / "c", **only_introspection) == "LocalPlatform"
    monkeypatch.setenv("PSP_PLATFORM", "commercetools")
    with pytest.raises(ConfigurationError) as missing:
        _platform_name(tmp_path / "d", **only_introspection)
    assert missing.value.key == "CTP_API_URL" and CLIENT_SECRET not in str(missing.value)


def test_a_token_close_to_its_expiry_is_replaced_before_use(app, client, stripe_mock, commercetools) -> None:
    _, session_id = checkout(commercetools)
    assert client.get("/config-element/payment", headers={"X-Session-Id": session_id}).status_code == 200
    oauth = app.extensions["psp_connector"].platform.client._oauth
    oauth.token["expires_at"] = oauth.token["expires_at"] - 172800 + 60  # a minute left: inside the leeway

    assert client.get("/config-element/payment", headers={"X-Session-Id": session_id}).status_code == 200

    assert [c[1] for c in ct_calls(stripe_mock)].count(f"{AUTH}/oauth/token") == 2
    assert all(call.response.status_code == 200 for call in stripe_mock.calls)  # renewed before, not after a 401


def test_the_configured_scope_is_asked_for(make_app, stripe_mock, commercetools) -> None:
    client = make_app(CTP_SCOPE=f"manage_payments:{PROJECT} view_sessions:{PROJECT}").test_client()
    _, session_id = checkout(commercetools)
    client.get("/config-element/payment", headers={"X-Session-Id": session_id})
    [token_call] = [c for c in ct_calls(stripe_mock) if c[1] == f"{AUTH}/oauth/token"]
    assert token_call[2] == {"grant_type": "client_credentials", "scope": f"manage_payments:{PROJECT} view_sessions:{PROJECT}"}


@pytest.mark.parametrize("digits", [0, 2, 3, None])
def test_cent_amounts_are_the_currencys_minor_units_whatever_fraction_digits_say(digits) -> None:
    from flask_psp_connector.platforms.commercetools.mapping import money_from_json

    data = {"type": "centPrecision", "centAmount": 3000, "currencyCode": "EUR"}
    if digits is not None:
        data["fractionDigits"] = digits
    money = money_from_json(data)
    assert (money.cent_amount, money.fraction_digits, money.to_stripe()) == (3000, 2, 3000)
    assert money_from_json({"centAmount": 1200, "currencyCode": "JPY", "fractionDigits": 2}).to_stripe() == 1200


def test_a_settlement_concludes_nothing_yet_only_on_a_fresh_read(webhook_app, stripe_mock, commercetools,
                                                                 monkeypatch) -> None:
    """Two payments share a cart's total; the second succeeds after the first's webhook read
    the cart: the first still places the order (on a fresh read), not "not paid yet"."""
    from flask_psp_connector.domain.money import Money
    from flask_psp_connector.domain.payment import TransactionDraft, TransactionState, TransactionType
    from flask_psp_connector.ports import PaymentDraft

    client = webhook_app.test_client()
    platform = webhook_app.extensions["psp_connector"].platform
    cart_id, _ = checkout(commercetools)
    cart, half = platform.get_cart(cart_id), Money.of(1500, "EUR")
    for key, pi in (("pay-a", "pi_a"), ("pay-b", "pi_b")):
        platform.create_payment(PaymentDraft(
            key, cart_id, half, "checkout-stripe", pi, f"{pi}_secret_x",
            (TransactionDraft(TransactionType.AUTHORIZATION, TransactionState.INITIAL, half, pi),),
            cart_fingerprint=cart.fingerprint, cart_version=cart.version))
    found_in_cart = platform.payments.found_in_cart

    def and_meanwhile(*args: Any) -> Any:
        found = found_in_cart(*args)
        platform.apply_transactions("pay-b", [
            TransactionDraft(TransactionType.AUTHORIZATION, TransactionState.SUCCESS, half, "pi_b"),
            TransactionDraft(TransactionType.CHARGE, TransactionState.SUCCESS, half, "pi_b")])
        return found

    monkeypatch.setattr(platform.payments, "found_in_cart", and_meanwhile)
    metadata = {"cart_id": cart_id, "ct_payment_id": "pay-a"}
    paid = intent("pi_a", "pay-a", status="succeeded", amount=1500, received=1500, metadata=metadata)
    assert post_event(client, event("payment_intent.succeeded", paid)).status_code == 200
    [order] = platform.client.get("/orders", where=f'cart(id="{cart_id}")')["results"]
    assert order["paymentState"] == "Paid"


@pytest.mark.parametrize(
    ("body", "code"),
    [({"errors": [{"code": "DuplicateField"}], "error": "invalid_request"}, "DuplicateField"),
     ({"errors": ["not an object"], "error": "invalid_scope"}, "invalid_scope"),
     ({"errors": [], "error": "invalid_client"}, "invalid_client"),
     ({"message": "no code"}, "General"),
     ([{"code": "NotAnObject"}], "General")],
)
def test_commercetools_and_hantera_read_a_refusals_code_alike(body: Any, code: str) -> None:
    from flask_psp_connector.gateways.hantera.client import HanteraClient
    from flask_psp_connector.platforms.commercetools.client import CommercetoolsClient

    refusal = requests.Response()
    refusal.status_code, refusal._content = 400, json.dumps(body).encode()
    ct = CommercetoolsClient(api_url=API, auth_url=AUTH, session_url=SESSIONS, project_key=PROJECT, client_id="c",
                             client_secret="s")
    hantera = HanteraClient(api_url="https://core.hantera.test", client_id="c", client_secret="s")
    assert ct.error_code(refusal) == hantera.error_code(refusal) == code
