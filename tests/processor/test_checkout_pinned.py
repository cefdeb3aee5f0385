"""Processor routes with the exact Stripe requests pinned (responses)."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

import pytest
import requests
import responses
from flask import Flask

from flask_psp_connector.domain.payment import TransactionDraft, TransactionState, TransactionType
from flask_psp_connector.stripe.adapter import STRIPE_API_VERSION
from tests.conftest import SECRET_KEY, STRIPE_API, bearer, open_checkout

S, T = TransactionState, TransactionType
PI_URL = f"{STRIPE_API}/v1/payment_intents"


def intent(pi_id: str = "pi_123", **fields: Any) -> dict[str, Any]:
    body = {"id": pi_id, "object": "payment_intent", "client_secret": f"{pi_id}_secret_abc", "amount": 3000,
            "currency": "eur", "status": "requires_payment_method", "capture_method": "automatic", "metadata": {}}
    body.update(fields)
    return body


def echo_intent(request: Any) -> tuple[int, dict[str, str], str]:
    """Answer a PaymentIntent create like Stripe: echo amount, currency and metadata."""
    form = dict(parse_qsl(request.body))
    metadata = {k[9:-1]: v for k, v in form.items() if k.startswith("metadata[")}
    body = intent(f"pi_{len(metadata.get('ct_payment_id', ''))}{form['amount']}", amount=int(form["amount"]),
                  currency=form["currency"], metadata=metadata)
    return 200, {}, json.dumps(body)


def cancel_intent(request: Any) -> tuple[int, dict[str, str], str]:
    """Answer a PaymentIntent cancel like Stripe: the PaymentIntent, now canceled."""
    pi_id = request.url.split("/")[-2]
    return 200, {}, json.dumps(intent(pi_id, status="canceled"))


CANCEL_URL = re.compile(rf"{re.escape(PI_URL)}/pi_\w+/cancel")


def form_of(call: Any) -> dict[str, str]:
    return dict(parse_qsl(call.request.body))


def stripe_calls(mock: responses.RequestsMock) -> list[Any]:
    return [call for call in mock.calls if call.request.url.startswith(STRIPE_API)]


def store(app: Flask) -> Any:
    return app.extensions["psp_connector"].platform


def get_payments(client: Any, session_id: str, method: str = "get", **kwargs: Any) -> Any:
    return getattr(client, method)("/payments", headers={"X-Session-Id": session_id}, **kwargs)


# -- /payments ------------------------------------------------------------------------


def test_payments_creates_one_payment_intent_for_the_server_side_amount(app, client, stripe_mock) -> None:
    stripe_mock.add_callback(responses.POST, PI_URL, callback=echo_intent)
    cart_id, session_id = open_checkout(app, unit_price=1500, quantity=2)

    response = get_payments(client, session_id)

    assert response.status_code == 200
    body = response.get_json()
    [call] = stripe_calls(stripe_mock)
    payment_id = body["paymentReference"]
    assert form_of(call) == {
        "amount": "3000", "currency": "eur", "capture_method": "automatic",
        "automatic_payment_methods[enabled]": "true",
        "metadata[cart_id]": cart_id, "metadata[ct_project_key]": "shop", "metadata[ct_payment_id]": payment_id,
    }
    assert call.request.headers["Idempotency-Key"] == f"psp-payment-intent-{payment_id}"
    assert call.request.headers["Stripe-Version"] == STRIPE_API_VERSION
    assert call.request.headers["Authorization"] == f"Bearer {SECRET_KEY}"
    assert body["sClientSecret"] == body["clientSecret"] == "pi_363000_secret_abc"
    assert body["cartId"] == cart_id
    assert body["merchantReturnUrl"] == "https://shop.example.test/return"
    assert "billingAddress" not in body
    [payment] = store(app).payments_of_cart(cart_id)
    assert payment.id == payment_id and payment.interface_id == "pi_363000"
    assert [(t.type, t.state, t.interaction_id, t.amount.cent_amount) for t in payment.transactions] == [
        (T.AUTHORIZATION, S.INITIAL, "pi_363000", 3000)]


def test_retried_payments_call_reuses_the_payment_intent(app, client, stripe_mock) -> None:
    stripe_mock.add_callback(responses.POST, PI_URL, callback=echo_intent)
    cart_id, session_id = open_checkout(app)
    first = get_payments(client, session_id).get_json()
    second = get_payments(client, session_id, method="post", json={}).get_json()
    assert second == first
    assert len(stripe_calls(stripe_mock)) == 1
    assert len(store(app).payments_of_cart(cart_id)) == 1


def test_a_changed_cart_gets_a_new_payment_for_its_new_amount(app, client, stripe_mock) -> None:
    from flask_psp_connector import LineItemDraft

    stripe_mock.add_callback(responses.POST, PI_URL, callback=echo_intent)
    stripe_mock.add_callback(responses.POST, CANCEL_URL, callback=cancel_intent)
    cart_id, session_id = open_checkout(app)
    first = get_payments(client, session_id).get_json()
    store(app).update_cart(cart_id, line_items=[LineItemDraft("tee-blue", "Blue T-shirt", 3, 1500)])
    second = get_payments(client, session_id).get_json()
    assert second["paymentReference"] != first["paymentReference"]
    create, cancel, create_again = stripe_calls(stripe_mock)
    assert [form_of(c).get("amount") for c in (create, create_again)] == ["3000", "4500"]
    # The earlier cart state's PaymentIntent is cancelled before the new client secret is handed out.
    assert cancel.request.url == f"{PI_URL}/pi_363000/cancel"
    assert cancel.request.headers["Idempotency-Key"] == f"psp-cancel-{first['paymentReference']}"
    old, new = store(app).payments_of_cart(cart_id)
    assert old.stale_reason == "superseded" and new.stale_reason is None
    assert [(t.type, t.state) for t in old.transactions] == [(T.AUTHORIZATION, S.FAILURE), (T.CANCEL_AUTHORIZATION, S.SUCCESS)]
    assert new.cart_fingerprint == store(app).get_cart(cart_id).fingerprint != old.cart_fingerprint


def test_body_can_never_set_the_amount(app, client, stripe_mock) -> None:
    stripe_mock.add_callback(responses.POST, PI_URL, callback=echo_intent)
    _, session_id = open_checkout(app)
    response = get_payments(client, session_id, method="post", json={"paymentMethodOptions": {"card": {}}})
    assert response.status_code == 200
    assert form_of(stripe_calls(stripe_mock)[0])["amount"] == "3000"


@pytest.mark.parametrize(
    ("currency", "unit_price", "stripe_amount"),
    [("JPY", 1500, "3000"), ("KWD", 1250, "2500"), ("ISK", 1500, "300000"), ("USD", 1999, "3998")],
)
def test_currency_exponents_reach_stripe_exactly(make_app, stripe_mock, currency, unit_price, stripe_amount) -> None:
    app = make_app()
    stripe_mock.add_callback(responses.POST, PI_URL, callback=echo_intent)
    _, session_id = open_checkout(app, currency=currency, unit_price=unit_price)
    assert get_payments(app.test_client(), session_id).status_code == 200
    form = form_of(stripe_calls(stripe_mock)[0])
    assert (form["amount"], form["currency"]) == (stripe_amount, currency.lower())


def test_kwd_amount_stripe_would_round_is_refused_before_stripe(app, client, stripe_mock) -> None:
    cart_id, session_id = open_checkout(app, currency="KWD", unit_price=1255, quantity=1)
    response = get_payments(client, session_id)
    assert response.status_code == 400
    assert response.get_json()["errors"][0]["code"] == "InvalidOperation"
    assert stripe_calls(stripe_mock) == []
    assert store(app).payments_of_cart(cart_id) == []


def test_explicit_payment_method_types_and_manual_multicapture(make_app, stripe_mock) -> None:
    app = make_app(STRIPE_PAYMENT_METHOD_TYPES="card,sepa_debit", STRIPE_CAPTURE_METHOD="manual",
                   STRIPE_ENABLE_MULTI_OPERATIONS=True)
    stripe_mock.add_callback(responses.POST, PI_URL, callback=echo_intent)
    _, session_id = open_checkout(app)
    get_payments(app.test_client(), session_id)
    form = form_of(stripe_calls(stripe_mock)[0])
    assert form["payment_method_types[0]"] == "card" and form["payment_method_types[1]"] == "sepa_debit"
    assert "automatic_payment_methods[enabled]" not in form
    assert form["capture_method"] == "manual"
    assert form["payment_method_options[card][request_multicapture]"] == "if_available"


def test_billing_address_is_returned_when_not_collected_by_the_element(make_app, stripe_mock) -> None:
    app = make_app(STRIPE_COLLECT_BILLING_ADDRESS="never")
    stripe_mock.add_callback(responses.POST, PI_URL, callback=echo_intent)
    _, session_id = open_checkout(app)
    billing = json.loads(get_payments(app.test_client(), session_id).get_json()["billingAddress"])
    assert billing == {"name": "Jane Doe", "phone": "", "email": "jane@example.test",
                       "address": {"line1": "12 Main St", "line2": "", "city": "Berlin", "postal_code": "10115",
                                   "state": "", "country": "DE"}}


def test_stripe_error_keeps_code_and_status_and_writes_nothing(app, client, stripe_mock) -> None:
    stripe_mock.add(responses.POST, PI_URL, status=400, json={"error": {
        "type": "invalid_request_error", "code": "amount_too_small", "message": "Amount must be at least €0.50 eur"}})
    cart_id, session_id = open_checkout(app, unit_price=10, quantity=1)
    response = get_payments(client, session_id)
    assert response.status_code == 400
    assert response.get_json()["errors"][0] == {"code": "amount_too_small", "message": "Amount must be at least €0.50 eur"}
    assert store(app).payments_of_cart(cart_id) == []


def test_stripe_unreachable_is_a_502_and_writes_nothing(app, client, stripe_mock) -> None:
    stripe_mock.add(responses.POST, PI_URL, body=requests.ConnectionError("down"))
    cart_id, session_id = open_checkout(app)
    response = get_payments(client, session_id)
    assert response.status_code == 502
    assert store(app).payments_of_cart(cart_id) == []


# -- /config-element and /operations/config ----------------------------------------------


def test_config_element(make_app) -> None:
    appearance = '{"theme": "night", "variables": {"colorPrimary": "#0570de"}}'
    app = make_app(STRIPE_APPEARANCE_PAYMENT_ELEMENT=appearance, STRIPE_APPEARANCE_EXPRESS_CHECKOUT='{"theme":"flat"}',
                   STRIPE_CAPTURE_METHOD="manual", STRIPE_LAYOUT='{"type":"accordion"}')
    _, session_id = open_checkout(app, currency="JPY", unit_price=1200, quantity=1)
    client = app.test_client()
    body = client.get("/config-element/payment", headers={"x-session-id": session_id}).get_json()
    assert body == {"cartInfo": {"amount": 1200, "currency": "JPY"}, "appearance": appearance,
                    "captureMethod": "manual", "layout": '{"type":"accordion"}', "collectBillingAddress": "auto",
                    "paymentElementOptions": "{}", "flowType": "deferred"}
    express = client.get("/config-element/expressCheckout", headers={"x-session-id": session_id}).get_json()
    assert express["appearance"] == '{"theme":"flat"}'
    config = client.get("/operations/config", headers={"X-Session-Id": session_id}).get_json()
    assert config == {"environment": "TEST", "publishableKey": "pk_test_connector", "captureMethod": "manual",
                      "appearance": appearance}


def test_config_element_refuses_a_cart_paid_in_full(app, client, stripe_mock) -> None:
    stripe_mock.add_callback(responses.POST, PI_URL, callback=echo_intent)
    cart_id, session_id = open_checkout(app)
    payment_id = get_payments(client, session_id).get_json()["paymentReference"]
    payment = store(app).get_payment(payment_id)
    store(app).apply_transactions(payment_id, [
        TransactionDraft(T.AUTHORIZATION, S.SUCCESS, payment.amount_planned, payment.interface_id)])
    response = client.get("/config-element/payment", headers={"X-Session-Id": session_id})
    assert response.status_code == 400
    assert response.get_json()["errors"][0] == {"code": "InvalidOperation", "message": "The cart has already been paid in full",
                                                "resource": cart_id, "paidAmount": 3000, "cartAmount": 3000}
    assert get_payments(client, session_id).status_code == 400
    assert len(stripe_calls(stripe_mock)) == 1


def test_customer_session_is_204_for_a_cart_without_customer(app, client) -> None:
    _, session_id = open_checkout(app)
    response = client.get("/customer/session", headers={"X-Session-Id": session_id})
    assert response.status_code == 204 and response.data == b""


# -- /confirmPayments --------------------------------------------------------------------


def checkout_with_payment(app, client, stripe_mock) -> tuple[str, str, str]:
    stripe_mock.add_callback(responses.POST, PI_URL, callback=echo_intent)
    cart_id, session_id = open_checkout(app)
    body = get_payments(client, session_id).get_json()
    return session_id, body["paymentReference"], store(app).get_payment(body["paymentReference"]).interface_id


@pytest.mark.parametrize(
    ("status", "http", "outcome", "recorded"),
    [
        ("succeeded", 200, "approved", [(T.AUTHORIZATION, S.SUCCESS), (T.CHARGE, S.SUCCESS)]),
        ("requires_capture", 200, "approved", [(T.AUTHORIZATION, S.SUCCESS)]),
        ("processing", 202, "pending", [(T.AUTHORIZATION, S.PENDING)]),
        ("requires_payment_method", 400, "rejected", [(T.AUTHORIZATION, S.INITIAL)]),
        ("requires_action", 400, "rejected", [(T.AUTHORIZATION, S.INITIAL)]),
    ],
)
def test_confirm_reads_the_payment_intent(app, client, stripe_mock, status, http, outcome, recorded) -> None:
    session_id, payment_id, pi_id = checkout_with_payment(app, client, stripe_mock)
    stripe_mock.add(responses.GET, f"{PI_URL}/{pi_id}", json=intent(
        pi_id, status=status, amount_received=3000 if status == "succeeded" else 0,
        metadata={"ct_payment_id": payment_id}))
    response = client.post(f"/confirmPayments/{payment_id}", json={"paymentIntent": pi_id},
                           headers={"X-Session-Id": session_id})
    assert response.status_code == http
    assert response.get_json()["outcome"] == outcome
    payment = store(app).get_payment(payment_id)
    assert [(t.type, t.state) for t in payment.transactions] == recorded
    again = client.post(f"/confirmPayments/{payment_id}", json={"paymentIntent": pi_id},
                        headers={"X-Session-Id": session_id})
    assert again.status_code == http
    assert store(app).get_payment(payment_id).transactions == payment.transactions


@pytest.mark.parametrize(
    "tampered",
    [{"metadata": {"ct_payment_id": "someone-else"}}, {"amount": 1}, {"currency": "usd"}],
)
def test_confirm_rejects_a_payment_intent_that_does_not_match(app, client, stripe_mock, tampered) -> None:
    session_id, payment_id, pi_id = checkout_with_payment(app, client, stripe_mock)
    fields = {"status": "succeeded", "metadata": {"ct_payment_id": payment_id}, **tampered}
    stripe_mock.add(responses.GET, f"{PI_URL}/{pi_id}", json=intent(pi_id, **fields))
    response = client.post(f"/confirmPayments/{payment_id}", json={"paymentIntent": pi_id},
                           headers={"X-Session-Id": session_id})
    assert response.status_code == 400
    assert response.get_json() == {"outcome": "rejected", "error": "Payment confirmation failed"}
    assert [(t.type, t.state) for t in store(app).get_payment(payment_id).transactions] == [(T.AUTHORIZATION, S.INITIAL)]


# -- /operations/payment-intents ---------------------------------------------------------




def authorized_payment(app, client, stripe_mock, *transactions: tuple[T, S]) -> tuple[str, str]:
    _, payment_id, pi_id = checkout_with_payment(app, client, stripe_mock)
    planned = store(app).get_payment(payment_id).amount_planned
    store(app).apply_transactions(payment_id, [TransactionDraft(t, s, planned, pi_id) for t, s in transactions])
    return payment_id, pi_id


def operate(client, app, payment_id: str, action: str, amount: int | None = None, currency: str = "EUR") -> Any:
    body: dict[str, Any] = {"action": action}
    if amount is not None:
        body["amount"] = {"centAmount": amount, "currencyCode": currency}
    return client.post(f"/operations/payment-intents/{payment_id}", json={"actions": [body]}, headers=bearer(app))


def test_partial_then_refused_over_capture(app, client, stripe_mock) -> None:
    payment_id, pi_id = authorized_payment(app, client, stripe_mock, (T.AUTHORIZATION, S.SUCCESS))
    stripe_mock.add(responses.POST, f"{PI_URL}/{pi_id}/capture", json=intent(pi_id, status="succeeded", amount_received=1800))
    response = operate(client, app, payment_id, "capturePayment", 1800)
    assert response.status_code == 200 and response.get_json() == {"outcome": "approved"}
    [call] = [c for c in stripe_calls(stripe_mock) if c.request.url.endswith("/capture")]
    assert form_of(call) == {"amount_to_capture": "1800"}
    assert call.request.headers["Idempotency-Key"] == f"psp-capture-{payment_id}-0-1800"
    payment = store(app).get_payment(payment_id)
    assert [(t.type, t.amount.cent_amount, t.interaction_id) for t in payment.transactions_of(T.CHARGE)] == [
        (T.CHARGE, 1800, pi_id)]
    # a partial capture without multicapture releases the rest: nothing more to capture
    refused = operate(client, app, payment_id, "capturePayment", 100)
    assert refused.status_code == 400
    assert refused.get_json()["errors"][0]["capturableAmount"] == 0


def test_multicapture_keeps_the_rest_capturable(make_app, stripe_mock) -> None:
    app = make_app(STRIPE_ENABLE_MULTI_OPERATIONS=True, STRIPE_CAPTURE_METHOD="manual")
    client = app.test_client()
    payment_id, pi_id = authorized_payment(app, client, stripe_mock, (T.AUTHORIZATION, S.SUCCESS))
    multicapture = dict(capture_method="manual", latest_charge="ch_1",
                        payment_method_options={"card": {"request_multicapture": "if_available"}})
    stripe_mock.add(responses.POST, f"{PI_URL}/{pi_id}/capture",
                    json=intent(pi_id, status="requires_capture", amount_received=1000, **multicapture))
    stripe_mock.add(responses.POST, f"{PI_URL}/{pi_id}/capture",
                    json=intent(pi_id, status="succeeded", amount_received=3000, **multicapture))
    captured = [{"id": "txn_1", "object": "balance_transaction", "type": "charge", "amount": 1000, "currency": "eur",
                 "created": 1}]
    listing = f"{STRIPE_API}/v1/balance_transactions"
    stripe_mock.add(responses.GET, listing, json={"object": "list", "data": captured, "has_more": False, "url": listing})
    stripe_mock.add(responses.GET, listing, json={"object": "list", "has_more": False, "url": listing, "data": [
        {**captured[0], "id": "txn_2", "amount": 2000, "created": 2}, *captured]})
    assert operate(client, app, payment_id, "capturePayment", 1000).get_json() == {"outcome": "approved"}
    assert operate(client, app, payment_id, "capturePayment", 2000).get_json() == {"outcome": "approved"}
    captures = [c for c in stripe_calls(stripe_mock) if c.request.url.endswith("/capture")]
    assert [form_of(c) for c in captures] == [{"amount_to_capture": "1000", "final_capture": "false"},
                                              {"amount_to_capture": "2000"}]
    charges = store(app).get_payment(payment_id).transactions_of(T.CHARGE, S.SUCCESS)
    assert [(t.amount.cent_amount, t.interaction_id) for t in charges] == [(1000, "txn_1"), (2000, "txn_2")]
    assert operate(client, app, payment_id, "capturePayment", 1).status_code == 400


def test_several_partial_refunds_then_refused_over_refund(app, client, stripe_mock) -> None:
    payment_id, pi_id = authorized_payment(app, client, stripe_mock, (T.AUTHORIZATION, S.SUCCESS), (T.CHARGE, S.SUCCESS))
    for n, status in enumerate(["succeeded", "pending"], 1):
        stripe_mock.add(responses.POST, f"{STRIPE_API}/v1/refunds",
                        json={"id": f"re_{n}", "object": "refund", "amount": 1000, "status": status})
    assert operate(client, app, payment_id, "refundPayment", 1000).get_json() == {"outcome": "received"}
    assert operate(client, app, payment_id, "refundPayment", 1000).get_json() == {"outcome": "received"}
    refunds = [c for c in stripe_calls(stripe_mock) if c.request.url.endswith("/v1/refunds")]
    assert [c.request.headers["Idempotency-Key"] for c in refunds] == [
        f"psp-refund-{payment_id}-0-1000", f"psp-refund-{payment_id}-1000-1000"]
    assert form_of(refunds[0]) == {"payment_intent": pi_id, "amount": "1000"}
    payment = store(app).get_payment(payment_id)
    assert [(t.interaction_id, t.state) for t in payment.transactions_of(T.REFUND)] == [("re_1", S.SUCCESS), ("re_2", S.PENDING)]
    refused = operate(client, app, payment_id, "refundPayment", 1001)
    assert refused.status_code == 400 and refused.get_json()["errors"][0]["refundableAmount"] == 1000
    assert len([c for c in stripe_calls(stripe_mock) if c.request.url.endswith("/v1/refunds")]) == 2


def test_cancel_and_reverse(app, client, stripe_mock) -> None:
    payment_id, pi_id = authorized_payment(app, client, stripe_mock, (T.AUTHORIZATION, S.SUCCESS))
    stripe_mock.add(responses.POST, f"{PI_URL}/{pi_id}/cancel", json=intent(pi_id, status="canceled"))
    assert operate(client, app, payment_id, "reversePayment").get_json() == {"outcome": "approved"}
    [call] = [c for c in stripe_calls(stripe_mock) if c.request.url.endswith("/cancel")]
    assert call.request.headers["Idempotency-Key"] == f"psp-cancel-{payment_id}"
    payment = store(app).get_payment(payment_id)
    assert [(t.type, t.state) for t in payment.transactions] == [
        (T.AUTHORIZATION, S.FAILURE), (T.CANCEL_AUTHORIZATION, S.SUCCESS)]
    nothing_left = operate(client, app, payment_id, "reversePayment")
    assert nothing_left.status_code == 400
    assert nothing_left.get_json()["message"] == "There is no successful payment transaction to reverse."


def test_reverse_of_a_charge_refunds_what_is_left(app, client, stripe_mock) -> None:
    payment_id, pi_id = authorized_payment(app, client, stripe_mock, (T.AUTHORIZATION, S.SUCCESS), (T.CHARGE, S.SUCCESS))
    stripe_mock.add(responses.POST, f"{STRIPE_API}/v1/refunds",
                    json={"id": "re_9", "object": "refund", "amount": 3000, "status": "succeeded"})
    assert operate(client, app, payment_id, "reversePayment").get_json() == {"outcome": "received"}
    assert form_of(stripe_calls(stripe_mock)[-1]) == {"payment_intent": pi_id, "amount": "3000"}


def test_a_captured_payment_cannot_be_cancelled(app, client, stripe_mock) -> None:
    payment_id, _ = authorized_payment(app, client, stripe_mock, (T.AUTHORIZATION, S.SUCCESS), (T.CHARGE, S.SUCCESS))
    response = operate(client, app, payment_id, "cancelPayment")
    assert response.status_code == 400
    assert len(stripe_calls(stripe_mock)) == 1  # only the PaymentIntent creation


def test_stripe_refusal_is_a_rejected_outcome_and_records_nothing(app, client, stripe_mock) -> None:
    payment_id, pi_id = authorized_payment(app, client, stripe_mock, (T.AUTHORIZATION, S.SUCCESS))
    stripe_mock.add(responses.POST, f"{PI_URL}/{pi_id}/capture", status=400, json={"error": {
        "type": "invalid_request_error", "code": "payment_intent_unexpected_state", "message": "already captured"}})
    before = store(app).get_payment(payment_id)
    response = operate(client, app, payment_id, "capturePayment", 3000)
    assert response.status_code == 200 and response.get_json() == {"outcome": "rejected"}
    assert store(app).get_payment(payment_id).transactions == before.transactions
