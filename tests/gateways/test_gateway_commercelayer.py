"""The Commerce Layer external gateway against the local Stripe double."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
import responses
import stripe
from flask import Flask
from sqlalchemy import text

from flask_psp_connector.gateways.commercelayer.signature import SIGNATURE_HEADER, is_signed, sign
from tests import gateway_support as cl
from tests.webhook_support import SECRETS, event, post_event


@pytest.fixture
def cl_app(make_app, stripe_double: str) -> Flask:
    requests.delete(f"{stripe_double}/_config/data", timeout=5)
    return make_app(STRIPE_API_BASE=stripe_double, STRIPE_PAYMENT_METHOD_TYPES="card",
                    COMMERCELAYER_SHARED_SECRET=cl.SHARED_SECRET, COMMERCELAYER_CALLBACK_URL=cl.CALLBACK_URL,
                    STRIPE_WEBHOOK_SIGNING_SECRET=",".join(SECRETS))


def card(client: stripe.StripeClient, number: str) -> str:
    return client.v1.payment_methods.create(params={
        "type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"}}).id


def rows(app: Flask, table: str) -> int:
    with app.extensions["psp_connector"].database.transaction() as session:
        return session.scalar(text(f"SELECT count(*) FROM {table}"))


def intents(stripe_client: stripe.StripeClient) -> list[Any]:
    return stripe_client.v1.payment_intents.list(params={"limit": 100}).data


# -- signatures ------------------------------------------------------------------------


def test_signature_is_base64_hmac_sha256_of_the_raw_body() -> None:
    # Computed independently: printf '%s' '{"a":1}' | openssl dgst -sha256 -hmac secret -binary | base64
    assert sign(b'{"a":1}', "secret") == "qp4uNXX11wmLbKzNeQiIw21f22M0KnO62i1qUXR6hJQ="
    assert is_signed(b'{"a":1}', "qp4uNXX11wmLbKzNeQiIw21f22M0KnO62i1qUXR6hJQ=", "secret")
    assert not is_signed(b'{"a": 1}', "qp4uNXX11wmLbKzNeQiIw21f22M0KnO62i1qUXR6hJQ=", "secret")


@pytest.mark.parametrize("signature", [None, "", "not-base64", sign(b"another body", cl.SHARED_SECRET),
                                       sign(b"{}", "wrong secret")])
def test_missing_or_wrong_signature_is_refused_and_nothing_happens(cl_app, stripe_double_client, signature) -> None:
    client = cl_app.test_client()
    response = cl.post(client, "authorize", cl.authorize("ep1", "pm_card_visa", 3000), signature=signature)
    assert response.status_code == 401
    assert response.get_json() == {"success": False, "data": {
        "transaction_token": None, "amount_cents": None,
        "error": {"code": "invalid_signature", "message": "The request signature is missing or does not match."}}}
    assert intents(stripe_double_client) == []
    assert rows(cl_app, "psp_gateway_requests") == 0


def test_a_signature_replayed_on_another_body_is_refused(cl_app, stripe_double_client) -> None:
    client = cl_app.test_client()
    signed = json.dumps(cl.authorize("ep1", "pm_card_visa", 3000)).encode()
    tampered = json.dumps(cl.authorize("ep1", "pm_card_visa", 1)).encode()
    response = cl.post(client, "authorize", {}, body=tampered, signature=sign(signed, cl.SHARED_SECRET))
    assert response.status_code == 401
    assert intents(stripe_double_client) == []


def test_a_replayed_request_gets_the_same_answer_and_one_stripe_effect(cl_app, stripe_double_client) -> None:
    client = cl_app.test_client()
    body = json.dumps(cl.authorize("ep1", "pm_card_visa", 3000)).encode()
    first = cl.post(client, "authorize", {}, body=body)
    replayed = cl.post(client, "authorize", {}, body=body, signature=first.request.headers[SIGNATURE_HEADER])
    assert first.status_code == replayed.status_code == 200
    assert first.get_json() == replayed.get_json()
    assert len(intents(stripe_double_client)) == 1


# -- authorize, capture, refund, void ----------------------------------------------------


@pytest.mark.parametrize("database_url", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
                         indirect=True)
def test_authorize_partial_capture_then_partial_refunds(make_app, stripe_double, stripe_double_client,
                                                        database_url) -> None:
    requests.delete(f"{stripe_double}/_config/data", timeout=5)
    app = make_app(STRIPE_API_BASE=stripe_double, STRIPE_PAYMENT_METHOD_TYPES="card", PSP_DATABASE_URL=database_url,
                   COMMERCELAYER_SHARED_SECRET=cl.SHARED_SECRET, COMMERCELAYER_CALLBACK_URL=cl.CALLBACK_URL)
    client = app.test_client()

    authorized = cl.post(client, "authorize", cl.authorize("ep1", "pm_card_visa", 12900, total_amount_with_taxes_float=129.0))
    assert authorized.status_code == 200
    data = authorized.get_json()["data"]
    pi = data["transaction_token"]
    assert authorized.get_json()["success"] is True
    assert data["amount_cents"] == 12900 and pi.startswith("pi_")
    assert data["metadata"] == {"stripe_payment_intent": pi, "stripe_status": "requires_capture"}
    intent = stripe_double_client.v1.payment_intents.retrieve(pi)
    assert (intent.amount, intent.currency, intent.capture_method) == (12900, "eur", "manual")
    assert intent.metadata["cl_external_payment_id"] == "ep1" and intent.metadata["cl_order_id"] == "ord1"

    capture = cl.authorization("auth1", pi, 12900, capture_amount_cents=10000)
    captured = cl.post(client, "capture", capture)
    assert captured.status_code == 200
    assert captured.get_json()["data"]["amount_cents"] == 10000
    assert cl.post(client, "capture", capture).get_json() == captured.get_json()  # duplicate
    assert stripe_double_client.v1.payment_intents.retrieve(pi).status == "succeeded"

    first = cl.capture("cap1", pi, 10000, refund_amount_cents=2500, refund_balance_cents=10000)
    second = cl.capture("cap1", pi, 10000, refund_amount_cents=2500, refund_balance_cents=7500)
    answers = [cl.post(client, "refund", doc) for doc in (first, second, first, second)]
    assert [a.status_code for a in answers] == [200, 200, 200, 200]
    tokens = [a.get_json()["data"]["transaction_token"] for a in answers]
    assert tokens[0] != tokens[1] and tokens[:2] == tokens[2:] and tokens[0].startswith("re_")
    assert [a.get_json()["data"]["amount_cents"] for a in answers[:2]] == [2500, 2500]
    stripe_refunds = stripe_double_client.v1.refunds.list(params={"payment_intent": pi}).data
    # the double records the released 2900 of the partial capture as a refund too
    assert sorted(r.amount for r in stripe_refunds if r.metadata.to_dict().get("cl_capture_id") == "cap1") == [2500, 2500]

    too_much = cl.post(client, "refund", cl.capture("cap1", pi, 10000, refund_amount_cents=6000,
                                                    refund_balance_cents=5000))
    assert too_much.status_code == 422
    assert too_much.get_json()["data"]["error"]["code"] == "invalid_payload"

    voided = cl.post(client, "void", cl.authorization("auth1", pi, 12900))
    assert voided.status_code == 422
    assert voided.get_json()["data"]["error"] == {
        "code": "already_captured", "message": "The authorization was captured: refund the capture instead of voiding it."}
    assert len(intents(stripe_double_client)) == 1


def test_void_then_duplicate_then_capture_refused(cl_app, stripe_double_client) -> None:
    client = cl_app.test_client()
    pi = cl.post(client, "authorize", cl.authorize("ep2", "pm_card_visa", 5000)).get_json()["data"]["transaction_token"]
    void = cl.authorization("auth2", pi, 5000, void_balance_cents=5000)
    voided = cl.post(client, "void", void)
    assert voided.status_code == 200
    assert voided.get_json()["data"] == {"transaction_token": pi, "amount_cents": 5000,
                                         "metadata": {"stripe_status": "canceled"}}
    assert cl.post(client, "void", void).get_json() == voided.get_json()
    # a void under another id for the same PaymentIntent: Stripe already did it, so success
    assert cl.post(client, "void", cl.authorization("auth2b", pi, 5000)).status_code == 200
    refused = cl.post(client, "capture", cl.authorization("auth2", pi, 5000))
    assert refused.status_code == 422
    assert refused.get_json()["data"]["error"]["code"] == "voided"


def test_capture_already_done_by_stripe_is_a_success(cl_app, stripe_double_client) -> None:
    client = cl_app.test_client()
    pi = cl.post(client, "authorize", cl.authorize("ep3", "pm_card_visa", 4000)).get_json()["data"]["transaction_token"]
    stripe_double_client.v1.payment_intents.capture(pi)  # e.g. from Stripe's dashboard
    answer = cl.post(client, "capture", cl.authorization("auth3", pi, 4000))
    assert answer.status_code == 200
    assert answer.get_json()["data"]["metadata"]["already_captured"] is True
    other = cl.post(client, "capture", cl.authorization("auth3", pi, 4000, capture_amount_cents=1000))
    assert other.status_code == 422 and other.get_json()["data"]["error"]["code"] == "already_captured"


# -- currencies ----------------------------------------------------------------------------


@pytest.mark.parametrize(("currency", "cents", "stripe_amount"), [("JPY", 5000, 5000), ("KWD", 12340, 12340),
                                                                   ("ISK", 500, 50000), ("EUR", 1999, 1999)])
def test_amounts_in_minor_units_with_stripe_exponents(cl_app, stripe_double_client, currency, cents, stripe_amount) -> None:
    client = cl_app.test_client()
    answer = cl.post(client, "authorize", cl.authorize(f"ep-{currency}", "pm_card_visa", cents, currency))
    assert answer.status_code == 200
    assert answer.get_json()["data"]["amount_cents"] == cents
    intent = stripe_double_client.v1.payment_intents.retrieve(answer.get_json()["data"]["transaction_token"])
    assert (intent.amount, intent.currency) == (stripe_amount, currency.lower())
    captured = cl.post(client, "capture", cl.authorization(f"a-{currency}", intent.id, cents, currency))
    assert captured.get_json()["data"]["amount_cents"] == cents


@pytest.mark.parametrize(("document", "message"), [
    (cl.authorize("ep", "pm_card_visa", 12345, "KWD"), "KWD amounts must end in 0"),
    (cl.authorize("ep", "pm_card_visa", 1000, "JPY", total_amount_with_taxes_float=10.0), "disagree for JPY"),
    (cl.authorize("ep", "pm_card_visa", 1000, "EUR", total_amount_with_taxes_float=1000), "disagree for EUR"),
    (cl.authorize("ep", "pm_card_visa", 0), "must be positive"),
    (cl.authorize("ep", "pm_card_visa", 10.5), "whole number"),
    (cl.authorize("ep", "4242424242424242", 1000), "payment_source_token"),
    (cl.authorization("a", "pi_x", 1000, "EUR", capture_amount_cents=1001), "Cannot capture 1001"),
    (cl.authorization("a", "pi_x", 1000, "USD"), None),
])
def test_inconsistent_amounts_are_refused_before_stripe(cl_app, stripe_double_client, document, message) -> None:
    client = cl_app.test_client()
    if message is None:  # the transaction's currency and the order's disagree
        document["included"][0]["attributes"]["currency_code"] = "EUR"
        message = "Currency codes disagree"
    action = "authorize" if document["data"]["type"] == "external_payments" else "capture"
    answer = cl.post(client, action, document)
    assert answer.status_code == 422
    error = answer.get_json()["data"]["error"]
    assert error["code"] == "invalid_payload" and message in error["message"]
    assert intents(stripe_double_client) == [] and rows(cl_app, "psp_gateway_requests") == 0


def test_malformed_json_api_is_refused_in_the_protocol_shape(cl_app) -> None:
    answer = cl.post(cl_app.test_client(), "authorize", {"data": {"type": "external_payments"}})
    assert answer.status_code == 422
    assert answer.get_json()["success"] is False
    assert answer.get_json()["data"]["error"] == {"code": "invalid_payload",
                                                  "message": "data.id: Missing data for required field."}


# -- declines and 3-D Secure ----------------------------------------------------------------


def test_decline_answers_failure_with_the_code_and_is_kept(cl_app, stripe_double_client) -> None:
    client = cl_app.test_client()
    document = cl.authorize("ep4", card(stripe_double_client, "4000000000000341"), 3000)
    declined = cl.post(client, "authorize", document)
    assert declined.status_code == 402
    assert declined.get_json()["success"] is False
    # Stripe documents 4000 0000 0000 0341 as declined with decline_code generic_decline.
    assert declined.get_json()["data"]["error"]["code"] == "generic_decline"
    assert cl.post(client, "authorize", document).get_json() == declined.get_json()
    assert len(intents(stripe_double_client)) == 1


def test_decline_carries_stripes_decline_code_and_payment_intent(make_app, stripe_mock) -> None:
    app = make_app(COMMERCELAYER_SHARED_SECRET=cl.SHARED_SECRET, COMMERCELAYER_CALLBACK_URL=cl.CALLBACK_URL)
    declined_intent = {"id": "pi_declined", "object": "payment_intent", "amount": 3000, "currency": "eur",
                       "status": "requires_payment_method", "metadata": {},
                       "last_payment_error": {"type": "card_error", "code": "card_declined",
                                              "decline_code": "insufficient_funds",
                                              "message": "Your card has insufficient funds."}}
    stripe_mock.post("https://api.stripe.com/v1/payment_intents", status=402, json={"error": {
        "type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds",
        "message": "Your card has insufficient funds.", "payment_intent": declined_intent}})
    answer = cl.post(app.test_client(), "authorize", cl.authorize("ep5", "pm_card_chargeDeclinedInsufficientFunds", 3000))
    assert answer.status_code == 402
    assert answer.get_json() == {"success": False, "data": {
        "transaction_token": "pi_declined", "amount_cents": 3000,
        "error": {"code": "insufficient_funds", "message": "Your card has insufficient funds."}}}
    sent = stripe_mock.calls[0].request
    assert sent.headers["Idempotency-Key"] == "cl-authorize-ep5-3000-EUR"
    assert "capture_method=manual" in sent.body and "confirm=true" in sent.body


def _three_d_secure(app: Flask, stripe_double_client: stripe.StripeClient,
                    payment_id: str = "ep6") -> tuple[Any, str, dict[str, Any]]:
    client = app.test_client()
    document = cl.authorize(payment_id, card(stripe_double_client, "4000002500003155"), 3000)
    pending = cl.post(client, "authorize", document)
    assert pending.status_code == 202
    data = pending.get_json()["data"]
    assert data["action_id"] == data["transaction_token"]
    assert data["metadata"]["stripe_status"] == "requires_action"
    assert data["metadata"]["stripe_client_secret"].startswith(data["action_id"])
    return pending, data["action_id"], document


def _authenticate(stripe_double: str, stripe_double_client: stripe.StripeClient, pi: str, success: bool) -> dict[str, Any]:
    secret = stripe_double_client.v1.payment_intents.retrieve(pi).client_secret
    requests.post(f"{stripe_double}/v1/payment_intents/{pi}/_authenticate", timeout=5,
                  data={"client_secret": secret, "success": str(success).lower(), "key": "pk_test_x"}).raise_for_status()
    return stripe_double_client.v1.payment_intents.retrieve(pi).to_dict()


def test_three_d_secure_answers_202_then_posts_the_signed_callback(cl_app, stripe_double, stripe_double_client) -> None:
    pending, pi, document = _three_d_secure(cl_app, stripe_double_client)
    intent = _authenticate(stripe_double, stripe_double_client, pi, True)
    assert intent["status"] == "requires_capture"
    client = cl_app.test_client()
    settled = event("payment_intent.amount_capturable_updated", intent)
    with responses.RequestsMock() as platform:
        platform.post(cl.CALLBACK_URL, status=204)
        response = post_event(client, settled)
        assert response.status_code == 200
        response.close()  # the callback is tried once the webhook's response is sent
        assert len(platform.calls) == 1
        sent = platform.calls[0].request
    assert sent.url == cl.CALLBACK_URL
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.headers[SIGNATURE_HEADER] == sign(sent.body, cl.SHARED_SECRET)
    assert json.loads(sent.body) == {"success": True, "data": {
        "transaction_token": pi, "amount_cents": 3000, "action_id": pi,
        "metadata": {"stripe_payment_intent": pi, "stripe_status": "requires_capture"}}}

    # the same event again, or another one about the same PaymentIntent: no second callback
    with responses.RequestsMock() as platform:
        post_event(client, settled).close()
        post_event(client, event("payment_intent.succeeded", {**intent, "status": "succeeded"})).close()
        assert len(platform.calls) == 0
    assert rows(cl_app, "psp_gateway_callbacks") == 1
    # and the authorization request, repeated, still gets its first answer
    again = cl.post(client, "authorize", document)
    assert (again.status_code, again.get_json()) == (202, pending.get_json())


def test_failed_authentication_posts_a_failure_callback(cl_app, stripe_double, stripe_double_client) -> None:
    _, pi, _ = _three_d_secure(cl_app, stripe_double_client, "ep7")
    intent = _authenticate(stripe_double, stripe_double_client, pi, False)
    with responses.RequestsMock() as platform:
        platform.post(cl.CALLBACK_URL, status=200)
        post_event(cl_app.test_client(), event("payment_intent.payment_failed", intent)).close()
        body = json.loads(platform.calls[0].request.body)
    assert body["success"] is False
    assert body["data"]["action_id"] == pi
    assert body["data"]["error"]["code"] == "payment_intent_authentication_failure"


def test_callbacks_are_retried_with_backoff_until_accepted(cl_app, stripe_double, stripe_double_client) -> None:
    from datetime import timedelta

    from flask_psp_connector.gateways.delivery import deliver_due
    from flask_psp_connector.platforms.embedded.schema import utcnow

    _, pi, _ = _three_d_secure(cl_app, stripe_double_client, "ep8")
    intent = _authenticate(stripe_double, stripe_double_client, pi, True)
    gateway = cl_app.extensions["psp_connector"].commercelayer
    with responses.RequestsMock() as platform:
        failing = platform.post(cl.CALLBACK_URL, status=503)
        post_event(cl_app.test_client(), event("payment_intent.amount_capturable_updated", intent)).close()
        assert failing.call_count == 1
        now = utcnow()
        assert deliver_due(gateway.store, cl.SHARED_SECRET, now=now).delivered == 0  # not due: backoff
        platform.replace(responses.POST, cl.CALLBACK_URL, body=requests.ConnectionError("down"))
        assert deliver_due(gateway.store, cl.SHARED_SECRET, now=now + timedelta(seconds=31)).failed == 1
        assert deliver_due(gateway.store, cl.SHARED_SECRET, now=now + timedelta(seconds=61)).delivered == 0
        platform.replace(responses.POST, cl.CALLBACK_URL, status=200)
        [waiting] = gateway.store.pending_callbacks()
        assert waiting.attempts == 2 and "ConnectionError" in waiting.last_error
        result = cl_app.test_cli_runner().invoke(args=["psp", "gateways", "callbacks"])
        assert pi in result.output and "attempts=2" in result.output
        assert deliver_due(gateway.store, cl.SHARED_SECRET, now=now + timedelta(seconds=92)).delivered == 1
        bodies = [call.request.body for call in platform.calls if not isinstance(call.response, Exception)]
        assert len(set(bodies)) == 1  # every attempt posts the same signed bytes
    assert gateway.store.pending_callbacks() == []
    result = cl_app.test_cli_runner().invoke(args=["psp", "gateways", "deliver"])
    assert result.output.strip() == "0 callback(s) delivered, 0 failed (retried later)."


def test_deliver_command_posts_due_callbacks(cl_app, stripe_double, stripe_double_client) -> None:
    _, pi, _ = _three_d_secure(cl_app, stripe_double_client, "ep9")
    intent = _authenticate(stripe_double, stripe_double_client, pi, True)
    post_event(cl_app.test_client(), event("payment_intent.amount_capturable_updated", intent))  # not closed: no attempt
    with responses.RequestsMock() as platform:
        platform.post(cl.CALLBACK_URL, status=200)
        result = cl_app.test_cli_runner().invoke(args=["psp", "gateways", "deliver"])
        assert result.output.strip() == "1 callback(s) delivered, 0 failed (retried later)."
        assert json.loads(platform.calls[0].request.body)["data"]["action_id"] == pi


def test_event_before_the_answer_is_stored_makes_stripe_retry(cl_app) -> None:
    intent = {"id": "pi_inflight", "object": "payment_intent", "amount": 3000, "currency": "eur", "status": "requires_capture",
              "metadata": {"psp_gateway": "commercelayer", "cl_request_key": "cl-authorize-epX-3000-EUR"}}
    response = post_event(cl_app.test_client(), event("payment_intent.amount_capturable_updated", intent))
    assert response.status_code == 503
    assert rows(cl_app, "psp_stripe_events") == 0


# -- storefront PaymentIntents and customer tokens ---------------------------------------------


def test_payment_intent_created_by_the_storefront(cl_app, stripe_double_client) -> None:
    created = stripe_double_client.v1.payment_intents.create(params={
        "amount": 3000, "currency": "eur", "capture_method": "manual", "payment_method_types": ["card"],
        "payment_method": "pm_card_visa"})
    assert created.status == "requires_confirmation"
    client = cl_app.test_client()
    answer = cl.post(client, "authorize", cl.authorize("ep10", created.id, 3000))
    assert answer.status_code == 200
    assert answer.get_json()["data"]["transaction_token"] == created.id
    intent = stripe_double_client.v1.payment_intents.retrieve(created.id)
    assert intent.status == "requires_capture" and intent.metadata["cl_external_payment_id"] == "ep10"
    # the same PaymentIntent cannot answer another order's payment, nor another amount
    other_order = cl.post(client, "authorize", cl.authorize("ep11", created.id, 3000))
    assert other_order.get_json()["data"]["error"]["code"] == "token_in_use"
    other_amount = cl.post(client, "authorize", cl.authorize("ep12", created.id, 2999))
    assert other_amount.get_json()["data"]["error"]["code"] == "amount_mismatch"


def test_customer_token_saves_the_payment_method_once_per_customer(cl_app, stripe_double_client) -> None:
    client = cl_app.test_client()
    pm = card(stripe_double_client, "4242424242424242")
    saved = cl.post(client, "token", cl.customer_source("cps1", pm))
    assert saved.status_code == 200
    data = saved.get_json()["data"]
    assert data["customer_token"].startswith("cus_") and data["payment_source_token"] == pm
    assert stripe_double_client.v1.payment_methods.retrieve(pm).customer == data["customer_token"]
    assert cl.post(client, "token", cl.customer_source("cps1", pm)).get_json() == saved.get_json()
    other = cl.post(client, "token", cl.customer_source("cps2", card(stripe_double_client, "4242424242424242")))
    assert other.get_json()["data"]["customer_token"] == data["customer_token"]
    assert len(stripe_double_client.v1.customers.list().data) == 1
    refused = cl.post(client, "token", cl.customer_source("cps3", card(stripe_double_client, "4000000000000002")))
    assert refused.status_code == 402
    assert refused.get_json() == {"success": False, "data": {
        "error": {"code": "card_declined", "message": "Your card was declined."}}}
    # the saved card pays for the customer's next order
    paid = cl.post(client, "authorize", cl.authorize("ep13", pm, 2000))
    assert paid.status_code == 200
    intent = stripe_double_client.v1.payment_intents.retrieve(paid.get_json()["data"]["transaction_token"])
    assert intent.customer == data["customer_token"]


def test_gateway_routes_are_documented_and_absent_when_not_configured(cl_app, make_app) -> None:
    paths = cl_app.test_client().get("/openapi.json").get_json()["paths"]
    actions = ("authorize", "capture", "void", "refund", "token")
    assert {p for p in paths if p.startswith(cl.BASE)} == {f"{cl.BASE}/{a}" for a in actions}
    plain = make_app()
    assert not any(r.rule.startswith("/gateways") for r in plain.url_map.iter_rules())
    assert plain.extensions["psp_connector"].claims == ()


def test_shared_secret_requires_the_callback_url(make_app) -> None:
    from flask_psp_connector.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="COMMERCELAYER_CALLBACK_URL"):
        make_app(COMMERCELAYER_SHARED_SECRET=cl.SHARED_SECRET)


def test_pending_refund_answers_202_then_settles_by_callback(make_app, stripe_mock) -> None:
    app = make_app(COMMERCELAYER_SHARED_SECRET=cl.SHARED_SECRET, COMMERCELAYER_CALLBACK_URL=cl.CALLBACK_URL,
                   STRIPE_WEBHOOK_SIGNING_SECRET=SECRETS[0])
    key = "cl-refund-cap9-2500-10000"
    refund = {"id": "re_pending", "object": "refund", "amount": 2500, "currency": "eur", "status": "pending",
              "payment_intent": "pi_paid", "metadata": {"psp_gateway": "commercelayer", "cl_request_key": key,
                                                        "cl_capture_id": "cap9"}}
    stripe_mock.post("https://api.stripe.com/v1/refunds", json=refund)
    client = app.test_client()
    document = cl.capture("cap9", "pi_paid", 10000, refund_amount_cents=2500, refund_balance_cents=10000)
    answer = cl.post(client, "refund", document)
    assert answer.status_code == 202
    assert answer.get_json()["data"]["action_id"] == "re_pending"
    sent = stripe_mock.calls[0].request
    assert sent.headers["Idempotency-Key"] == key and f"metadata[cl_request_key]={key}" in sent.body
    assert cl.post(client, "refund", document).get_json() == answer.get_json()
    assert len(stripe_mock.calls) == 1

    stripe_mock.post(cl.CALLBACK_URL, status=200)
    post_event(client, event("refund.updated", {**refund, "status": "succeeded"})).close()
    callback = stripe_mock.calls[1].request
    assert callback.url == cl.CALLBACK_URL and callback.headers[SIGNATURE_HEADER] == sign(callback.body, cl.SHARED_SECRET)
    assert json.loads(callback.body) == {"success": True, "data": {
        "transaction_token": "re_pending", "amount_cents": 2500, "action_id": "re_pending",
        "metadata": {"stripe_status": "succeeded"}}}


# -- hostile or unlucky requests ------------------------------------------------------------


@pytest.mark.parametrize("total", [10**30, 10**12, -1])
def test_amounts_beyond_any_real_payment_are_refused_before_stripe(make_app, stripe_mock, total) -> None:
    app = make_app(COMMERCELAYER_SHARED_SECRET=cl.SHARED_SECRET, COMMERCELAYER_CALLBACK_URL=cl.CALLBACK_URL)
    response = cl.post(app.test_client(), "authorize", cl.authorize("ep-big", "pm_card_visa", total))
    assert response.status_code == 422
    assert response.get_json()["data"]["error"]["code"] == "invalid_payload"
    assert not stripe_mock.calls


@pytest.mark.parametrize("payment_id", ["支払い-1", "ép-ü", "é" * 64, "ep 1"])
def test_idempotency_keys_are_ascii_whatever_the_ids(make_app, stripe_mock, payment_id) -> None:
    app = make_app(COMMERCELAYER_SHARED_SECRET=cl.SHARED_SECRET, COMMERCELAYER_CALLBACK_URL=cl.CALLBACK_URL)
    stripe_mock.post("https://api.stripe.com/v1/payment_intents", json={
        "id": "pi_ascii", "object": "payment_intent", "amount": 1000, "currency": "eur", "status": "requires_capture",
        "amount_capturable": 1000, "metadata": {}})
    document = cl.authorize(payment_id, "pm_card_visa", 1000, order_id="注文")
    response = cl.post(app.test_client(), "authorize", document)
    assert response.status_code == 200, response.get_data(as_text=True)
    key = stripe_mock.calls[0].request.headers["Idempotency-Key"]
    assert key.isascii() and len(key) <= 255 and key.startswith("cl-authorize-")
    assert cl.post(app.test_client(), "authorize", document).get_json() == response.get_json()
    assert len(stripe_mock.calls) == 1


def test_plain_ids_keep_their_readable_keys() -> None:
    from flask_psp_connector.gateways.commercelayer.actions import request_key

    assert request_key("refund", "cap1", 2500, 10000) == "cl-refund-cap1-2500-10000"
    assert request_key("customer", "cust-ord1") == "cl-customer-cust-ord1"


def test_over_refunds_are_refused_from_our_own_records_before_stripe(make_app, stripe_mock) -> None:
    app = make_app(COMMERCELAYER_SHARED_SECRET=cl.SHARED_SECRET, COMMERCELAYER_CALLBACK_URL=cl.CALLBACK_URL)
    refunds = (f"re_{n}" for n in range(1, 10))
    stripe_mock.add_callback(responses.POST, "https://api.stripe.com/v1/refunds", callback=lambda request: (
        200, {}, json.dumps({"id": next(refunds), "object": "refund", "amount": int(
            dict(part.split("=") for part in request.body.split("&"))["amount"]),
            "currency": "eur", "status": "succeeded", "metadata": {}})))
    client = app.test_client()
    # Commerce Layer's balance is stale: it says 5000 both times.
    first = cl.post(client, "refund", cl.capture("cap5", "pi_paid", 5000, refund_amount_cents=1000,
                                                 refund_balance_cents=5000))
    assert first.status_code == 200
    second = cl.post(client, "refund", cl.capture("cap5", "pi_paid", 5000, refund_amount_cents=4500,
                                                  refund_balance_cents=5000))
    assert second.status_code == 422
    assert second.get_json()["data"]["error"]["code"] == "over_refund"
    assert len(stripe_mock.calls) == 1
    rest = cl.post(client, "refund", cl.capture("cap5", "pi_paid", 5000, refund_amount_cents=4000,
                                                refund_balance_cents=4000))
    assert rest.status_code == 200 and len(stripe_mock.calls) == 2
    # another capture whose id starts the same is counted on its own
    other = cl.post(client, "refund", cl.capture("cap5-b", "pi_other", 5000, refund_amount_cents=5000,
                                                 refund_balance_cents=5000))
    assert other.status_code == 200
