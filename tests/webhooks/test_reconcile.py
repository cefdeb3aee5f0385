"""``flask psp reconcile`` repairs refunds, disputes and captures whose webhooks never came.

Changes are made at the local Stripe double (as in Stripe's dashboard) and their events
are not delivered; reconcile must find them, print them in a dry run, record them with
``--apply``, and stay idempotent with the webhooks when they finally arrive.
``test_commercetools_reconcile`` runs every test here on commercetools.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
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
    return make_app(STRIPE_API_BASE=stripe_double, STRIPE_PAYMENT_METHOD_TYPES="card",
                    STRIPE_ENABLE_MULTI_OPERATIONS=True, STRIPE_WEBHOOK_SIGNING_SECRET=SECRETS[0])


def store(app: Flask) -> Any:
    return app.extensions["psp_connector"].platform


def paid(app: Flask, double: stripe.StripeClient, method: str = "pm_card_visa") -> tuple[str, str, str]:
    """A 30.00 EUR checkout paid at the double and confirmed: (cart id, payment id, PaymentIntent id)."""
    cart_id, session_id = open_checkout(app, unit_price=1500, quantity=2)
    client = app.test_client()
    body = client.get("/payments", headers={"X-Session-Id": session_id}).get_json()
    pi = body["clientSecret"].split("_secret_")[0]
    double.v1.payment_intents.update(pi, params={"payment_method": method})
    double.v1.payment_intents.confirm(pi)
    answer = client.post(f"/confirmPayments/{body['paymentReference']}", json={"paymentIntent": pi},
                         headers={"X-Session-Id": session_id})
    assert answer.get_json() == {"outcome": "approved"}
    return cart_id, body["paymentReference"], pi


def reconcile(app: Flask, *args: str) -> str:
    result = app.test_cli_runner().invoke(args=["psp", "reconcile", *args])
    assert result.exit_code == 0, result.output
    return result.output


def transactions(app: Flask, payment_id: str, type_: TransactionType) -> list[tuple[str, int, str]]:
    payment = store(app).get_payment(payment_id)
    return sorted((t.state.value, t.amount.cent_amount, t.interaction_id) for t in payment.transactions_of(type_))


def deliver_everything(app: Flask, double: stripe.StripeClient) -> None:
    """Stripe's late webhooks: every event the double recorded, oldest first."""
    for sent in reversed(double.v1.events.list(params={"limit": 100}).data):
        assert post_event(app.test_client(), json.loads(str(sent))).status_code == 200


def test_refunds_made_at_stripe_are_printed_then_applied(shop_app, stripe_double_client) -> None:
    cart_id, payment_id, pi = paid(shop_app, stripe_double_client)
    first = stripe_double_client.v1.refunds.create(params={"payment_intent": pi, "amount": 1000})
    second = stripe_double_client.v1.refunds.create(params={"payment_intent": pi, "amount": 500})

    dry = reconcile(shop_app, "--since", "1h")
    assert f"{pi} (succeeded) charge.refunded: missing" in dry
    assert f"Refund Success 1000 ({first.id})" in dry and f"Refund Success 500 ({second.id})" in dry
    assert "1 payment(s) to change (dry run" in dry
    assert transactions(shop_app, payment_id, T.REFUND) == []

    applied = reconcile(shop_app, "--since", "1h", "--apply")
    assert f"{pi} (succeeded) charge.refunded: added" in applied and "1 payment(s) changed" in applied
    assert transactions(shop_app, payment_id, T.REFUND) == sorted(
        [("Success", 1000, first.id), ("Success", 500, second.id)])
    assert store(shop_app).find_order_by_cart(cart_id).payment_state == "PartiallyRefunded"

    deliver_everything(shop_app, stripe_double_client)
    assert len(store(shop_app).get_payment(payment_id).transactions_of(T.REFUND)) == 2
    assert "0 payment(s)" in reconcile(shop_app, "--since", "1h", "--apply")


def test_a_dispute_is_followed_to_its_outcome(shop_app, stripe_double_client) -> None:
    _, payment_id, pi = paid(shop_app, stripe_double_client, "pm_card_createDispute")
    [dispute] = stripe_double_client.v1.disputes.list(params={"payment_intent": pi}).data
    assert "Chargeback Pending 3000" in reconcile(shop_app, "--since", "1h")
    reconcile(shop_app, "--since", "1h", "--apply")
    assert transactions(shop_app, payment_id, T.CHARGEBACK) == [("Pending", 3000, dispute.id)]

    stripe_double_client.v1.disputes.close(dispute.id)  # the merchant accepts it: lost
    dry = reconcile(shop_app, "--since", "1h")
    assert f"{pi} (succeeded) charge.dispute.updated: missing Chargeback Success 3000 ({dispute.id})" in dry
    reconcile(shop_app, "--since", "1h", "--apply")
    assert transactions(shop_app, payment_id, T.CHARGEBACK) == [("Success", 3000, dispute.id)]
    deliver_everything(shop_app, stripe_double_client)
    assert transactions(shop_app, payment_id, T.CHARGEBACK) == [("Success", 3000, dispute.id)]


def test_captures_made_at_stripe_are_recorded_once(make_app, stripe_double, stripe_double_client) -> None:
    requests.delete(f"{stripe_double}/_config/data", timeout=5)
    app = shop_app_with(make_app, stripe_double, STRIPE_CAPTURE_METHOD="manual")
    _, payment_id, pi = paid(app, stripe_double_client)
    stripe_double_client.v1.payment_intents.capture(pi, params={"amount_to_capture": 1000, "final_capture": False})
    dry = reconcile(app, "--since", "1h")
    assert f"{pi} (requires_capture) charge.updated: missing Charge Success 1000 (txn_" in dry
    reconcile(app, "--since", "1h", "--apply")
    assert [amount for _, amount, _ in transactions(app, payment_id, T.CHARGE)] == [1000]
    captured = app.test_client().post(f"/operations/payment-intents/{payment_id}", headers=bearer(app), json={
        "actions": [{"action": "capturePayment", "amount": {"centAmount": 2000, "currencyCode": "EUR"}}]})
    assert captured.get_json() == {"outcome": "approved"}
    deliver_everything(app, stripe_double_client)
    assert "0 payment(s)" in reconcile(app, "--since", "1h", "--apply")
    assert sorted(amount for _, amount, _ in transactions(app, payment_id, T.CHARGE)) == [1000, 2000]
    assert store(app).get_payment(payment_id).total(T.CHARGE, S.SUCCESS) == 3000


def shop_app_with(make_app: Any, stripe_double: str, **config: Any) -> Flask:
    """The app of the ``shop_app`` fixture (the platform suite overrides it), with more configuration."""
    return make_app(STRIPE_API_BASE=stripe_double, STRIPE_PAYMENT_METHOD_TYPES="card",
                    STRIPE_ENABLE_MULTI_OPERATIONS=True, STRIPE_WEBHOOK_SIGNING_SECRET=SECRETS[0], **config)


def test_since_reaches_older_payments_refunded_in_the_window(shop_app, stripe_double_client) -> None:
    _, payment_id, pi = paid(shop_app, stripe_double_client)
    time.sleep(1.1)
    window = datetime.now(UTC).isoformat()
    time.sleep(1.1)
    refund = stripe_double_client.v1.refunds.create(params={"payment_intent": pi, "amount": 300})
    assert f"Refund Success 300 ({refund.id})" in reconcile(shop_app, "--since", window, "--apply")
    assert transactions(shop_app, payment_id, T.REFUND) == [("Success", 300, refund.id)]
    later = datetime.now(UTC).isoformat()
    time.sleep(1.1)
    assert "0 payment(s)" in reconcile(shop_app, "--since", later)


def test_since_reaches_older_payments_captured_in_the_window(make_app, stripe_double, stripe_double_client) -> None:
    requests.delete(f"{stripe_double}/_config/data", timeout=5)
    app = shop_app_with(make_app, stripe_double, STRIPE_CAPTURE_METHOD="manual")
    _, payment_id, pi = paid(app, stripe_double_client)
    time.sleep(1.1)
    window = datetime.now(UTC).isoformat()
    time.sleep(1.1)
    stripe_double_client.v1.payment_intents.capture(pi, params={"amount_to_capture": 1300, "final_capture": False})
    output = reconcile(app, "--since", window, "--apply")
    assert f"{pi} (requires_capture) charge.updated: added Charge Success 1300 (txn_" in output
    assert [amount for _, amount, _ in transactions(app, payment_id, T.CHARGE)] == [1300]
