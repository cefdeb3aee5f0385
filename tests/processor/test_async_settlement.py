"""Async settlement (``payment_intent.processing``) with SEPA Direct Debit at the Stripe double.

A debit is ``processing`` for days: /confirmPayments answers 202 pending and no order is
placed until the money arrives (``payment_intent.succeeded``); a failed debit places
none and the cart can be paid again. ``test_commercetools_async_settlement`` runs every
test here on commercetools.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
import stripe
from flask import Flask

from flask_psp_connector.domain.payment import TransactionState, TransactionType
from tests.conftest import open_checkout
from tests.webhook_support import SECRETS, post_event

S, T = TransactionState, TransactionType
SETTLES, FAILS = "DE89370400440532013000", "DE62370400440532013001"


@pytest.fixture
def shop_app(make_app: Any, stripe_double: str) -> Flask:
    requests.delete(f"{stripe_double}/_config/data", timeout=5)
    return make_app(STRIPE_API_BASE=stripe_double, STRIPE_PAYMENT_METHOD_TYPES="card,sepa_debit",
                    STRIPE_WEBHOOK_SIGNING_SECRET=SECRETS[0])


def store(app: Flask) -> Any:
    return app.extensions["psp_connector"].platform


def debit(app: Flask, double: stripe.StripeClient, iban: str, *, confirm: bool = True) -> tuple[str, str, str, str]:
    """Pay a 30.00 EUR cart by SEPA debit at the double: (cart id, session id, payment id, PaymentIntent id)."""
    cart_id, session_id = open_checkout(app, unit_price=1500, quantity=2)
    client = app.test_client()
    body = client.get("/payments", headers={"X-Session-Id": session_id}).get_json()
    pi = body["clientSecret"].split("_secret_")[0]
    method = double.v1.payment_methods.create(params={
        "type": "sepa_debit", "sepa_debit": {"iban": iban},
        "billing_details": {"name": "Jane Doe", "email": "jane@example.test"}})
    assert double.v1.payment_intents.confirm(pi, params={"payment_method": method.id}).status == "processing"
    if confirm:
        answer = client.post(f"/confirmPayments/{body['paymentReference']}", json={"paymentIntent": pi},
                             headers={"X-Session-Id": session_id})
        assert (answer.status_code, answer.get_json()) == (202, {"outcome": "pending"})
    return cart_id, session_id, body["paymentReference"], pi


def settle(double_url: str, pi: str) -> dict[str, Any]:
    """The bank's answer, days later (the double's ``_settle``)."""
    answer = requests.post(f"{double_url}/v1/payment_intents/{pi}/_settle", auth=("sk_test_connector", ""), timeout=5)
    assert answer.status_code == 200, answer.text
    return answer.json()


def deliver(app: Flask, double: stripe.StripeClient, *types: str) -> None:
    for sent in reversed(double.v1.events.list(params={"limit": 100}).data):
        if not types or sent.type in types:
            assert post_event(app.test_client(), json.loads(str(sent))).status_code == 200


def states(app: Flask, payment_id: str) -> list[tuple[str, str]]:
    return [(t.type.value, t.state.value) for t in store(app).get_payment(payment_id).transactions]


def element_config(app: Flask, session_id: str) -> Any:
    return app.test_client().get("/config-element/payment", headers={"X-Session-Id": session_id})


def test_a_processing_debit_is_pending_and_places_no_order(shop_app, stripe_double_client) -> None:
    cart_id, session_id, payment_id, _ = debit(shop_app, stripe_double_client, SETTLES)
    assert states(shop_app, payment_id) == [("Authorization", "Pending")]
    assert store(shop_app).find_order_by_cart(cart_id) is None
    assert element_config(shop_app, session_id).status_code == 400  # being paid: not offered twice
    deliver(shop_app, stripe_double_client, "payment_intent.processing", "charge.pending")
    assert states(shop_app, payment_id) == [("Authorization", "Pending")]
    assert store(shop_app).find_order_by_cart(cart_id) is None


def test_the_order_is_placed_when_the_money_arrives(shop_app, stripe_double, stripe_double_client) -> None:
    cart_id, _, payment_id, pi = debit(shop_app, stripe_double_client, SETTLES)
    assert settle(stripe_double, pi)["status"] == "succeeded"
    deliver(shop_app, stripe_double_client)
    assert states(shop_app, payment_id) == [("Authorization", "Success"), ("Charge", "Success")]
    order = store(shop_app).find_order_by_cart(cart_id)
    assert order is not None and order.payment_state == "Paid"


def test_a_failed_debit_places_no_order_and_the_cart_can_be_paid_again(shop_app, stripe_double, stripe_double_client) -> None:
    cart_id, session_id, payment_id, pi = debit(shop_app, stripe_double_client, FAILS)
    assert settle(stripe_double, pi)["status"] == "requires_payment_method"
    deliver(shop_app, stripe_double_client)
    assert states(shop_app, payment_id) == [("Authorization", "Failure")]
    assert store(shop_app).find_order_by_cart(cart_id) is None
    assert element_config(shop_app, session_id).status_code == 200


def test_succeeded_before_processing_stays_succeeded(shop_app, stripe_double, stripe_double_client) -> None:
    cart_id, _, payment_id, pi = debit(shop_app, stripe_double_client, SETTLES, confirm=False)
    settle(stripe_double, pi)
    deliver(shop_app, stripe_double_client, "payment_intent.succeeded")
    deliver(shop_app, stripe_double_client, "payment_intent.processing")  # late, out of order
    assert states(shop_app, payment_id) == [("Authorization", "Success"), ("Charge", "Success")]
    assert store(shop_app).find_order_by_cart(cart_id) is not None


def test_reconcile_follows_a_debit_whose_webhooks_were_missed(shop_app, stripe_double, stripe_double_client) -> None:
    cart_id, _, payment_id, pi = debit(shop_app, stripe_double_client, SETTLES, confirm=False)
    result = shop_app.test_cli_runner().invoke(args=["psp", "reconcile", "--since", "1h", "--apply"])
    assert f"{pi} (processing) payment_intent.processing: added Authorization Pending 3000" in result.output
    assert store(shop_app).find_order_by_cart(cart_id) is None
    settle(stripe_double, pi)
    result = shop_app.test_cli_runner().invoke(args=["psp", "reconcile", "--since", "1h", "--apply"])
    assert f"{pi} (succeeded) payment_intent.succeeded: added" in result.output
    assert store(shop_app).find_order_by_cart(cart_id) is not None
    assert states(shop_app, payment_id) == [("Authorization", "Success"), ("Charge", "Success")]
