"""Whole checkouts against the local Stripe double on 127.0.0.1.

The test plays the browser's part (Stripe.js confirming the PaymentIntent) with a Stripe
client on the same double.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
import stripe
from flask import Flask

from flask_psp_connector.domain.payment import TransactionState, TransactionType
from tests.conftest import bearer, open_checkout

S, T = TransactionState, TransactionType


def card(client: stripe.StripeClient, number: str) -> str:
    return client.v1.payment_methods.create(params={
        "type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"}}).id


def browser_confirms(client: stripe.StripeClient, client_secret: str, payment_method: str) -> Any:
    """What stripe.confirmPayment does in the browser, against the double."""
    pi_id = client_secret.split("_secret_")[0]
    client.v1.payment_intents.update(pi_id, params={"payment_method": payment_method})
    return client.v1.payment_intents.confirm(pi_id)


def start(app: Flask) -> tuple[Any, str, dict[str, Any]]:
    client = app.test_client()
    _, session_id = open_checkout(app, unit_price=1500, quantity=2)
    body = client.get("/payments", headers={"X-Session-Id": session_id}).get_json()
    return client, session_id, body


def confirm(client: Any, session_id: str, body: dict[str, Any]) -> Any:
    pi_id = body["clientSecret"].split("_secret_")[0]
    return client.post(f"/confirmPayments/{body['paymentReference']}", json={"paymentIntent": pi_id},
                       headers={"X-Session-Id": session_id})


def payment_of(app: Flask, body: dict[str, Any]) -> Any:
    return app.extensions["psp_connector"].platform.get_payment(body["paymentReference"])


def operate(app: Flask, client: Any, payment_id: str, action: str, amount: int | None = None) -> Any:
    item: dict[str, Any] = {"action": action}
    if amount is not None:
        item["amount"] = {"centAmount": amount, "currencyCode": "EUR"}
    return client.post(f"/operations/payment-intents/{payment_id}", json={"actions": [item]}, headers=bearer(app))


def test_card_payment_then_two_partial_refunds(localstripe_app, stripe_double_client) -> None:
    client, session_id, body = start(localstripe_app)
    intent = browser_confirms(stripe_double_client, body["clientSecret"], "pm_card_visa")
    assert intent.status == "succeeded"
    assert intent.metadata["ct_payment_id"] == body["paymentReference"]  # set at creation, no second call

    assert confirm(client, session_id, body).get_json() == {"outcome": "approved"}
    payment = payment_of(localstripe_app, body)
    assert [(t.type, t.state, t.amount.cent_amount) for t in payment.transactions] == [
        (T.AUTHORIZATION, S.SUCCESS, 3000), (T.CHARGE, S.SUCCESS, 3000)]

    assert operate(localstripe_app, client, payment.id, "refundPayment", 500).get_json() == {"outcome": "received"}
    assert operate(localstripe_app, client, payment.id, "refundPayment", 700).get_json() == {"outcome": "received"}
    refunds = payment_of(localstripe_app, body).transactions_of(T.REFUND)
    assert [(t.state, t.amount.cent_amount) for t in refunds] == [(S.SUCCESS, 500), (S.SUCCESS, 700)]
    assert all(t.interaction_id.startswith("re_") for t in refunds)
    stripe_refunds = stripe_double_client.v1.refunds.list(params={"payment_intent": intent.id}).data
    assert sorted(r.amount for r in stripe_refunds) == [500, 700]
    # the cart is paid: no second PaymentIntent for it
    assert client.get("/payments", headers={"X-Session-Id": session_id}).status_code == 400


def test_decline_keeps_the_payment_intent_for_the_retry(localstripe_app, stripe_double_client) -> None:
    client, session_id, body = start(localstripe_app)
    with pytest.raises(stripe.CardError):
        browser_confirms(stripe_double_client, body["clientSecret"], card(stripe_double_client, "4000000000000341"))
    assert confirm(client, session_id, body).status_code == 400
    payment = payment_of(localstripe_app, body)
    assert [(t.type, t.state) for t in payment.transactions] == [(T.AUTHORIZATION, S.INITIAL)]

    # Stripe lets the browser confirm the same PaymentIntent again with another card, so
    # the retry hands it out again instead of creating a second one. (The double cannot
    # re-confirm a declined PaymentIntent, so the second confirmation is not played here.)
    retry = client.get("/payments", headers={"X-Session-Id": session_id}).get_json()
    assert retry == body
    assert len(localstripe_app.extensions["psp_connector"].platform.payments_of_cart(payment.cart_id)) == 1


@pytest.mark.parametrize(("passes", "outcome"), [(True, 200), (False, 400)])
def test_three_d_secure(localstripe_app, stripe_double_client, stripe_double, passes, outcome) -> None:
    client, session_id, body = start(localstripe_app)
    intent = browser_confirms(stripe_double_client, body["clientSecret"], card(stripe_double_client, "4000002500003155"))
    assert intent.status == "requires_action"
    assert confirm(client, session_id, body).status_code == 400  # not paid yet
    requests.post(f"{stripe_double}/v1/payment_intents/{intent.id}/_authenticate", timeout=5,
                  data={"client_secret": body["clientSecret"], "success": str(passes).lower(), "key": "pk_test_x"})
    assert confirm(client, session_id, body).status_code == outcome


def test_manual_capture_partial_then_refund(make_app, stripe_double, stripe_double_client) -> None:
    requests.delete(f"{stripe_double}/_config/data", timeout=5)
    app = make_app(STRIPE_API_BASE=stripe_double, STRIPE_PAYMENT_METHOD_TYPES="card", STRIPE_CAPTURE_METHOD="manual")
    client, session_id, body = start(app)
    assert browser_confirms(stripe_double_client, body["clientSecret"], "pm_card_visa").status == "requires_capture"
    assert confirm(client, session_id, body).get_json() == {"outcome": "approved"}
    payment_id = body["paymentReference"]
    assert operate(app, client, payment_id, "refundPayment", 100).status_code == 400  # nothing charged yet
    assert operate(app, client, payment_id, "capturePayment", 1800).get_json() == {"outcome": "approved"}
    assert stripe_double_client.v1.payment_intents.retrieve(body["clientSecret"].split("_secret_")[0]).status == "succeeded"
    assert operate(app, client, payment_id, "refundPayment", 1800).get_json() == {"outcome": "received"}
    payment = payment_of(app, body)
    assert payment.total(T.CHARGE, S.SUCCESS) == 1800 and payment.total(T.REFUND, S.SUCCESS) == 1800


def test_cancel_an_authorization(make_app, stripe_double, stripe_double_client) -> None:
    requests.delete(f"{stripe_double}/_config/data", timeout=5)
    app = make_app(STRIPE_API_BASE=stripe_double, STRIPE_PAYMENT_METHOD_TYPES="card", STRIPE_CAPTURE_METHOD="manual")
    client, session_id, body = start(app)
    browser_confirms(stripe_double_client, body["clientSecret"], "pm_card_visa")
    confirm(client, session_id, body)
    assert operate(app, client, body["paymentReference"], "cancelPayment").get_json() == {"outcome": "approved"}
    assert stripe_double_client.v1.payment_intents.retrieve(body["clientSecret"].split("_secret_")[0]).status == "canceled"
    # the cart is open again: a new payment can be started
    assert client.get("/payments", headers={"X-Session-Id": session_id}).status_code == 200


def test_stripe_health_check_against_the_double(localstripe_app) -> None:
    localstripe_app.extensions["psp_connector"].stripe.ping()
