"""Multicapture (STRIPE_ENABLE_MULTI_OPERATIONS) against the local Stripe double.

Captures are made through the operations API or directly at Stripe (the dashboard);
Stripe's own events are then delivered in every order. Each capture must be one Charge
transaction with its real amount (its balance transaction), whoever reports it first.
``test_commercetools_multicapture`` runs every test here on commercetools.
"""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any

import pytest
import requests
import stripe
from flask import Flask

from flask_psp_connector.domain.payment import TransactionState, TransactionType
from tests.conftest import bearer, open_checkout
from tests.webhook_support import SECRETS, post_event

S, T = TransactionState, TransactionType


@pytest.fixture
def shop_app(make_app: Any, stripe_double: str) -> Flask:
    requests.delete(f"{stripe_double}/_config/data", timeout=5)
    return make_app(STRIPE_API_BASE=stripe_double, STRIPE_PAYMENT_METHOD_TYPES="card", STRIPE_CAPTURE_METHOD="manual",
                    STRIPE_ENABLE_MULTI_OPERATIONS=True, STRIPE_WEBHOOK_SIGNING_SECRET=SECRETS[0])


def store(app: Flask) -> Any:
    return app.extensions["psp_connector"].platform


def authorized(app: Flask, double: stripe.StripeClient) -> tuple[str, str]:
    """A 30.00 EUR payment authorized at the double and confirmed: (payment id, PaymentIntent id)."""
    client = app.test_client()
    _, session_id = open_checkout(app, unit_price=1500, quantity=2)
    body = client.get("/payments", headers={"X-Session-Id": session_id}).get_json()
    pi = body["clientSecret"].split("_secret_")[0]
    double.v1.payment_intents.update(pi, params={"payment_method": "pm_card_visa"})
    assert double.v1.payment_intents.confirm(pi).status == "requires_capture"
    confirmed = client.post(f"/confirmPayments/{body['paymentReference']}", json={"paymentIntent": pi},
                            headers={"X-Session-Id": session_id})
    assert confirmed.get_json() == {"outcome": "approved"}
    return body["paymentReference"], pi


def capture(app: Flask, payment_id: str, amount: int) -> Any:
    return app.test_client().post(f"/operations/payment-intents/{payment_id}", headers=bearer(app), json={
        "actions": [{"action": "capturePayment", "amount": {"centAmount": amount, "currencyCode": "EUR"}}]})


def charges(app: Flask, payment_id: str) -> list[tuple[int, str]]:
    payment = store(app).get_payment(payment_id)
    return sorted((t.amount.cent_amount, t.interaction_id) for t in payment.transactions_of(T.CHARGE))


def captures_at_stripe(double: stripe.StripeClient, pi: str) -> list[tuple[int, str]]:
    charge = double.v1.payment_intents.retrieve(pi).latest_charge
    listed = double.v1.balance_transactions.list(params={"source": charge})
    return sorted((t.amount, t.id) for t in listed.data)


def stripe_events(double: stripe.StripeClient, *types: str) -> list[dict[str, Any]]:
    """The double's events of these types, oldest first, as Stripe would deliver them."""
    listed = double.v1.events.list(params={"limit": 100})
    return [json.loads(str(e)) for e in reversed(listed.data) if e.type in types]


def test_the_payment_intent_requests_multicapture(shop_app, stripe_double_client) -> None:
    _, pi = authorized(shop_app, stripe_double_client)
    intent = stripe_double_client.v1.payment_intents.retrieve(pi)
    assert (intent.capture_method, intent.payment_method_options.card.request_multicapture) == ("manual", "if_available")


def test_partial_captures_are_recorded_by_balance_transaction(shop_app, stripe_double_client) -> None:
    payment_id, pi = authorized(shop_app, stripe_double_client)
    assert capture(shop_app, payment_id, 1000).get_json() == {"outcome": "approved"}
    assert stripe_double_client.v1.payment_intents.retrieve(pi).status == "requires_capture"  # final_capture=false
    assert capture(shop_app, payment_id, 500).get_json() == {"outcome": "approved"}
    assert charges(shop_app, payment_id) == captures_at_stripe(stripe_double_client, pi)
    assert [amount for amount, _ in charges(shop_app, payment_id)] == [500, 1000]
    assert capture(shop_app, payment_id, 1600).status_code == 400  # only 15.00 left
    assert capture(shop_app, payment_id, 1500).get_json() == {"outcome": "approved"}
    assert stripe_double_client.v1.payment_intents.retrieve(pi).status == "succeeded"
    assert sum(amount for amount, _ in charges(shop_app, payment_id)) == 3000


@pytest.mark.parametrize("order", ["as sent", "reversed", "succeeded first"])
def test_stripes_events_after_our_captures_count_nothing_twice(shop_app, stripe_double_client, order: str) -> None:
    payment_id, pi = authorized(shop_app, stripe_double_client)
    for amount in (1000, 2000):
        assert capture(shop_app, payment_id, amount).get_json() == {"outcome": "approved"}
    recorded = charges(shop_app, payment_id)
    events = stripe_events(stripe_double_client, "charge.updated", "charge.captured", "payment_intent.succeeded")
    assert [e["type"] for e in events].count("charge.updated") == 2
    if order == "reversed":
        events.reverse()
    elif order == "succeeded first":
        events.sort(key=lambda e: e["type"] != "payment_intent.succeeded")
    for sent in events:
        assert post_event(shop_app.test_client(), sent).status_code == 200
    assert charges(shop_app, payment_id) == recorded == captures_at_stripe(stripe_double_client, pi)
    assert store(shop_app).get_payment(payment_id).total(T.CHARGE, S.SUCCESS) == 3000


@pytest.mark.parametrize("order", ["as sent", "reversed", "succeeded first"])
def test_captures_made_at_stripe_arrive_by_webhook_in_any_order(shop_app, stripe_double_client, order: str) -> None:
    payment_id, pi = authorized(shop_app, stripe_double_client)
    stripe_double_client.v1.payment_intents.capture(pi, params={"amount_to_capture": 700, "final_capture": False})
    stripe_double_client.v1.payment_intents.capture(pi, params={"amount_to_capture": 2300})
    events = stripe_events(stripe_double_client, "charge.updated", "payment_intent.succeeded")
    if order == "reversed":
        events.reverse()
    elif order == "succeeded first":
        events.sort(key=lambda e: e["type"] != "payment_intent.succeeded")
    for sent in events + events:  # and every one delivered twice
        assert post_event(shop_app.test_client(), sent).status_code == 200
    assert charges(shop_app, payment_id) == captures_at_stripe(stripe_double_client, pi)
    assert [amount for amount, _ in charges(shop_app, payment_id)] == [700, 2300]
    assert capture(shop_app, payment_id, 1).status_code == 400  # nothing left to capture


def test_an_early_webhook_then_our_own_capture(shop_app, stripe_double_client) -> None:
    payment_id, pi = authorized(shop_app, stripe_double_client)
    stripe_double_client.v1.payment_intents.capture(pi, params={"amount_to_capture": 1200, "final_capture": False})
    [first] = stripe_events(stripe_double_client, "charge.updated")
    assert post_event(shop_app.test_client(), first).status_code == 200
    assert [amount for amount, _ in charges(shop_app, payment_id)] == [1200]
    assert capture(shop_app, payment_id, 1800).get_json() == {"outcome": "approved"}
    for sent in stripe_events(stripe_double_client, "charge.updated", "payment_intent.succeeded"):
        assert post_event(shop_app.test_client(), sent).status_code == 200
    assert charges(shop_app, payment_id) == captures_at_stripe(stripe_double_client, pi)
    assert store(shop_app).get_payment(payment_id).total(T.CHARGE, S.SUCCESS) == 3000


def test_without_multicapture_a_capture_keeps_the_payment_intent_id(make_app, stripe_double, stripe_double_client) -> None:
    requests.delete(f"{stripe_double}/_config/data", timeout=5)
    app = make_app(STRIPE_API_BASE=stripe_double, STRIPE_PAYMENT_METHOD_TYPES="card", STRIPE_CAPTURE_METHOD="manual",
                   STRIPE_WEBHOOK_SIGNING_SECRET=SECRETS[0])
    payment_id, pi = authorized(app, stripe_double_client)
    options = stripe_double_client.v1.payment_intents.retrieve(pi).payment_method_options
    assert options.card.to_dict().get("request_multicapture") is None
    assert capture(app, payment_id, 1000).get_json() == {"outcome": "approved"}
    for sent in stripe_events(stripe_double_client, "charge.updated", "charge.captured", "payment_intent.succeeded"):
        assert post_event(app.test_client(), sent).status_code == 200
    assert charges(app, payment_id) == [(1000, pi)]


def test_captures_settled_in_another_currency_add_up_to_what_was_captured() -> None:
    from datetime import datetime

    from flask_psp_connector.domain.captures import capture_drafts, is_multicapture_charge
    from flask_psp_connector.domain.money import Money
    from flask_psp_connector.domain.payment import Payment

    payment = Payment(id="p", version=1, cart_id="c", amount_planned=Money.of(3000, "EUR"), payment_interface="x",
                      interface_id="pi_1", method=None, transactions=(), created_at=datetime.now(UTC))
    settled = [{"id": "txn_b", "type": "charge", "amount": 2171, "currency": "usd", "exchange_rate": 1.0857, "created": 2},
               {"id": "txn_a", "type": "charge", "amount": 1086, "currency": "usd", "exchange_rate": 1.0857, "created": 1},
               {"id": "txn_r", "type": "refund", "amount": -500, "currency": "usd", "exchange_rate": 1.0857, "created": 3}]
    drafts = capture_drafts(payment, settled, 3000)
    assert [(d.interaction_id, d.amount.cent_amount, d.amount.currency_code) for d in drafts] == [
        ("txn_a", 1000, "EUR"), ("txn_b", 2000, "EUR")]
    assert is_multicapture_charge({"payment_method_details": {"card": {"multicapture": {"status": "available"}}}})
    assert not is_multicapture_charge({"payment_method_details": {"card": {"multicapture": {"status": "unavailable"}}}})
    assert not is_multicapture_charge({"payment_method_details": {"type": "sepa_debit", "sepa_debit": {}}})
