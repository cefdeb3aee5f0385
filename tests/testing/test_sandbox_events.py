"""What Stripe's event stream tells the shop, as the sandbox's double sends it: declined
attempts, the payment method from charge.succeeded, and a partial capture whose rest is
released (not refunded), each recorded by the connector's webhook handlers."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import stripe

from demo_shop import create_app
from flask_psp_connector.domain.payment import Payment
from flask_psp_connector.sandbox import SECRET_KEY, sandbox_config
from flask_psp_connector.testing import free_port
from tests.browser_support import serving, wait_for
from tests.conftest import bearer, open_checkout


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: Any) -> Iterator[SimpleNamespace]:
    """The demo shop in sandbox mode with manual capture, the double's webhooks flowing."""
    port = free_port()
    folder = tmp_path_factory.mktemp("events")
    with sandbox_config(f"http://127.0.0.1:{port}", name=f"events-{port}") as config:
        app = create_app({**config, "TESTING": True, "SECRET_KEY": "events-test-secret", "SESSION_COOKIE_SECURE": False,
                          "PSP_DATABASE_URL": f"sqlite:///{folder / 'shop.sqlite3'}", "STRIPE_CAPTURE_METHOD": "manual",
                          "CTP_PROJECT_KEY": "shop"})
        with serving(app, port):
            yield SimpleNamespace(app=app, platform=app.extensions["psp_connector"].platform,
                                  stripe=stripe.StripeClient(SECRET_KEY, base_addresses={"api": config["STRIPE_API_BASE"]},
                                                             max_network_retries=0))


def started(sandbox: SimpleNamespace) -> tuple[str, Payment]:
    cart_id, session_id = open_checkout(sandbox.app)  # EUR 30.00
    answer = sandbox.app.test_client().post("/payments", json={}, headers={"X-Session-Id": session_id}).get_json()
    return cart_id, sandbox.platform.get_payment(answer["paymentReference"])


def summary(payment: Payment) -> list[tuple[str, str, int]]:
    return sorted((t.type.value, t.state.value, t.amount.cent_amount) for t in payment.transactions)


def settled(sandbox: SimpleNamespace, payment_id: str, expected: list[tuple[str, str, int]]) -> Payment:
    return wait_for(lambda: (p := sandbox.platform.get_payment(payment_id)) and summary(p) == sorted(expected) and p)


def test_a_declined_attempt_is_recorded_as_a_failed_authorization(sandbox) -> None:
    _, payment = started(sandbox)
    with pytest.raises(stripe.CardError):
        sandbox.stripe.v1.payment_intents.confirm(payment.interface_id, params={"payment_method": "pm_card_chargeDeclined"})
    settled(sandbox, payment.id, [("Authorization", "Failure", 3000)])  # the Initial authorization failed


def test_an_authorization_records_the_method_and_a_partial_capture_releases_the_rest(sandbox) -> None:
    cart_id, payment = started(sandbox)
    sandbox.stripe.v1.payment_intents.confirm(payment.interface_id, params={"payment_method": "pm_card_visa"})
    authorized = settled(sandbox, payment.id, [("Authorization", "Success", 3000)])
    assert authorized.method == "card"  # from charge.succeeded
    client = sandbox.app.test_client()
    captured = client.post(f"/operations/payment-intents/{payment.id}", headers=bearer(sandbox.app), json={
        "actions": [{"action": "capturePayment", "amount": {"centAmount": 1200, "currencyCode": "EUR"}}]})
    assert captured.status_code == 200, captured.get_json()
    intent = sandbox.stripe.v1.payment_intents.retrieve(payment.interface_id, params={"expand": ["latest_charge"]})
    assert (intent.amount_received, intent.latest_charge.amount_captured, intent.latest_charge.amount_refunded) == (1200, 1200, 0)
    # charge.captured and payment_intent.succeeded (amount_received 1200) arrive: still one charge of 12.00, no refund.
    wait_for(lambda: any(r.event_type == "payment_intent.succeeded" and r.payment_id == payment.id
                         for r in sandbox.platform.recent_events(100)))
    final = sandbox.platform.get_payment(payment.id)
    assert [t for t in summary(final) if t[0] in ("Charge", "Refund")] == [("Charge", "Success", 1200)]
    wait_for(lambda: sandbox.platform.find_order_by_cart(cart_id))

