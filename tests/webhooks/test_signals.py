"""Signals for host apps: each sent once, after its change is committed, whatever the entry point."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from flask_psp_connector import PSPConnector, signals
from flask_psp_connector.domain.money import Money
from flask_psp_connector.domain.payment import StaleReason, TransactionDraft, TransactionState, TransactionType
from flask_psp_connector.domain.settle import PaymentChanges
from flask_psp_connector.ports import PaymentDraft
from flask_psp_connector.state import connector_state
from tests import gateway_support as cl
from tests.conftest import STRIPE_API, open_checkout
from tests.webhook_support import SECRETS, charge, dispute, event, intent, post_event, refund, stored_payment

S, T = TransactionState, TransactionType
_ids = itertools.count(1)


class Received:
    """Every signal the app sent while connected, with what the store held when it arrived."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.stored: list[tuple[str, Any]] = []

    def receiver(self, name: str) -> Any:
        def receive(sender: Flask, **arguments: Any) -> None:
            assert sender is self.app
            self.calls.append((name, arguments))
            payment = arguments.get("payment")
            if payment is not None:  # a fresh read: only what is committed is there
                self.stored.append((name, self.app.extensions["psp_connector"].platform.get_payment(payment.id)))

        return receive

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def of(self, name: str) -> dict[str, Any]:
        [arguments] = [arguments for called, arguments in self.calls if called == name]
        return arguments

    def clear(self) -> None:
        self.calls.clear()
        self.stored.clear()


@pytest.fixture
def app(make_app: Any, database_url: str) -> Flask:
    """The connector on each database."""
    return make_app(STRIPE_WEBHOOK_SIGNING_SECRET=SECRETS[0], PSP_DATABASE_URL=database_url)


@pytest.fixture
def received(app: Flask) -> Iterator[Received]:
    with connected(app) as recorder:
        yield recorder


def store(app: Flask) -> Any:
    return app.extensions["psp_connector"].platform


def paid(app: Flask, payment_id: str, pi: str, event_id: str | None = None) -> Any:
    return post_event(app.test_client(), event("payment_intent.succeeded", intent(pi, payment_id, status="succeeded",
                                                                                     received=3000), event_id))


# -- payment_succeeded and order_created --------------------------------------------------


def test_a_paid_payment_sends_payment_succeeded_and_order_created_once_after_commit(app, received) -> None:
    cart_id, payment_id, pi = stored_payment(app)
    assert paid(app, payment_id, pi, "evt_paid").status_code == 200

    assert received.names() == ["payment_succeeded", "order_created"]
    succeeded = received.of("payment_succeeded")
    assert succeeded["payment"].id == payment_id and succeeded["payment"].has(T.CHARGE, S.SUCCESS)
    assert succeeded["event_id"] == "evt_paid" and succeeded["stripe_object"]["id"] == pi
    created = received.of("order_created")
    assert created["order"].cart_id == cart_id and created["order"] == store(app).find_order_by_cart(cart_id)
    assert all(payment.has(T.CHARGE, S.SUCCESS) for _, payment in received.stored)  # committed before sending

    received.clear()
    assert paid(app, payment_id, pi, "evt_paid").status_code == 200  # Stripe's duplicate
    assert paid(app, payment_id, pi).status_code == 200  # another event saying the same
    assert post_event(app.test_client(), event("charge.succeeded", charge(pi))).status_code == 200
    assert received.calls == []


def test_confirm_payments_sends_them_and_the_later_webhook_does_not(app, received, stripe_mock) -> None:
    cart_id, session_id, payment_id, pi = checkout(app)
    stripe_mock.get(f"{STRIPE_API}/v1/payment_intents/{pi}", json={
        **intent(pi, payment_id, status="succeeded", received=3000), "customer": None})

    response = confirm(app, session_id, payment_id, pi)

    assert (response.status_code, response.get_json()) == (200, {"outcome": "approved"})
    assert received.names() == ["payment_succeeded", "order_created"]
    assert received.of("payment_succeeded")["event_id"] is None
    assert received.of("payment_succeeded")["stripe_object"] is None
    assert received.of("order_created")["order"].cart_id == cart_id
    received.clear()
    assert confirm(app, session_id, payment_id, pi).status_code == 200
    assert paid(app, payment_id, pi).status_code == 200
    assert received.calls == []


def test_a_change_the_webhook_recorded_first_is_not_told_again_by_confirm(app, received) -> None:
    """/confirmPayments read the payment before the webhook recorded it; its change is
    decided on the payment as stored, so nothing is sent twice."""
    cart_id, payment_id, pi = stored_payment(app)
    platform = connector_state(app).signalling_platform()
    platform.get_payment(payment_id)  # read before the webhook lands
    assert paid(app, payment_id, pi).status_code == 200
    assert received.names() == ["payment_succeeded", "order_created"]
    received.clear()
    money = Money.of(3000, "EUR")
    platform.apply_changes(payment_id, PaymentChanges((TransactionDraft(T.AUTHORIZATION, S.SUCCESS, money, pi),
                                                       TransactionDraft(T.CHARGE, S.SUCCESS, money, pi)),
                                                      interface_id=pi, create_order=True))
    assert received.calls == []
    assert store(app).get_cart(cart_id).state.value == "Ordered"


def test_settle_payment_sends_order_created_once(app, received) -> None:
    cart_id, payment_id, pi = stored_payment(app)
    money = Money.of(3000, "EUR")
    store(app).apply_transactions(payment_id, [TransactionDraft(T.AUTHORIZATION, S.SUCCESS, money, pi),
                                               TransactionDraft(T.CHARGE, S.SUCCESS, money, pi)])
    with app.app_context():
        PSPConnector().settle_payment(payment_id)
        assert received.names() == ["order_created"]
        assert received.of("order_created")["order"].cart_id == cart_id
        received.clear()
        PSPConnector().settle_payment(payment_id)
    assert received.calls == []


# -- payment_failed -------------------------------------------------------------------------


def test_a_declined_payment_sends_payment_failed_once_and_a_cancellation_does_not(app, received) -> None:
    _, payment_id, pi = stored_payment(app)
    declined = event("payment_intent.payment_failed", intent(pi, payment_id, status="requires_payment_method"))
    assert post_event(app.test_client(), declined).status_code == 200
    assert received.names() == ["payment_failed"]
    assert received.of("payment_failed")["payment"].has(T.AUTHORIZATION, S.FAILURE)
    assert received.of("payment_failed")["event_id"] == declined["id"]
    received.clear()
    assert post_event(app.test_client(), declined).status_code == 200
    assert received.calls == []

    _, other_id, other_pi = stored_payment(app)
    cancelled = event("payment_intent.canceled", intent(other_pi, other_id, status="canceled"))
    assert post_event(app.test_client(), cancelled).status_code == 200
    assert received.calls == []


# -- refund_recorded --------------------------------------------------------------------------


def test_a_refund_sends_refund_recorded_once_it_succeeds(app, received) -> None:
    _, payment_id, pi = stored_payment(app)
    paid(app, payment_id, pi)
    received.clear()
    pending = event("refund.created", refund("re_1", pi, 1000, status="pending"))
    assert post_event(app.test_client(), pending).status_code == 200
    assert received.calls == []
    done = event("refund.updated", refund("re_1", pi, 1000))
    assert post_event(app.test_client(), done).status_code == 200
    assert post_event(app.test_client(), done).status_code == 200  # duplicate
    refunded = event("charge.refunded", charge(pi, refunds=[refund("re_1", pi, 1000)]))
    assert post_event(app.test_client(), refunded).status_code == 200

    assert received.names() == ["refund_recorded"]
    recorded = received.of("refund_recorded")
    assert (recorded["transaction"].interaction_id, recorded["transaction"].amount.cent_amount) == ("re_1", 1000)
    assert recorded["event_id"] == done["id"] and recorded["payment"].id == payment_id


# -- dispute_opened ---------------------------------------------------------------------------


def test_a_dispute_sends_dispute_opened_once(app, received) -> None:
    _, payment_id, pi = stored_payment(app)
    paid(app, payment_id, pi)
    received.clear()
    opened = event("charge.dispute.created", dispute("dp_1", pi, "needs_response"))
    assert post_event(app.test_client(), opened).status_code == 200
    assert post_event(app.test_client(), opened).status_code == 200  # duplicate
    assert post_event(app.test_client(), event("charge.dispute.closed", dispute("dp_1", pi, "won"))).status_code == 200

    assert received.names() == ["dispute_opened"]
    assert received.of("dispute_opened")["transaction"].interaction_id == "dp_1"
    assert received.of("dispute_opened")["transaction"].type == T.CHARGEBACK


# -- payment_flagged --------------------------------------------------------------------------


def test_a_stale_payment_kept_for_the_merchant_sends_payment_flagged_once(make_app) -> None:
    app = make_app(STRIPE_WEBHOOK_SIGNING_SECRET=SECRETS[0], PSP_STALE_PAYMENTS="flag")
    with connected(app) as received:
        cart_id, payment_id, pi = stored_payment(app)
        store(app).update_cart(cart_id, shipping_amount=500)  # the buyer changed the cart in another tab
        assert paid(app, payment_id, pi, "evt_stale").status_code == 200
        assert paid(app, payment_id, pi, "evt_stale").status_code == 200

    assert received.names() == ["payment_succeeded", "payment_flagged"]  # money secured, no order
    flagged = received.of("payment_flagged")
    assert flagged["reason"] == StaleReason.CART_CHANGED
    assert (flagged["payment"].id, flagged["event_id"]) == (payment_id, "evt_stale")
    assert flagged["payment"] == store(app).get_payment(payment_id)  # as stored (commercetools may lack the field)
    assert store(app).find_order_by_cart(cart_id) is None


def test_a_stale_payment_refunded_sends_refund_recorded_not_payment_flagged(app, received, stripe_mock) -> None:
    cart_id, payment_id, pi = stored_payment(app)
    store(app).update_cart(cart_id, shipping_amount=500)
    stripe_mock.post(f"{STRIPE_API}/v1/refunds", json=refund("re_stale", pi, 3000))
    assert paid(app, payment_id, pi).status_code == 200

    assert received.names() == ["payment_succeeded", "refund_recorded"]
    assert received.of("refund_recorded")["transaction"].interaction_id == "re_stale"


# -- receivers that fail ----------------------------------------------------------------------


def test_a_receiver_that_raises_breaks_neither_the_webhook_nor_the_others(app, received, caplog) -> None:
    cart_id, payment_id, pi = stored_payment(app)

    def broken(sender: Flask, **arguments: Any) -> None:
        raise RuntimeError("the host app's bug")

    caplog.set_level(logging.ERROR, logger="flask_psp_connector.signals")
    with signals.payment_succeeded.connected_to(broken, sender=app):
        assert paid(app, payment_id, pi).status_code == 200

    assert received.names() == ["payment_succeeded", "order_created"]
    assert store(app).find_order_by_cart(cart_id) is not None
    assert "the host app's bug" in caplog.text and "payment_succeeded" in caplog.text


def test_a_receiver_that_raises_does_not_break_confirm_payments(app, received, stripe_mock) -> None:
    cart_id, session_id, payment_id, pi = checkout(app)
    stripe_mock.get(f"{STRIPE_API}/v1/payment_intents/{pi}", json={
        **intent(pi, payment_id, status="succeeded", received=3000), "customer": None})

    def broken(sender: Flask, **arguments: Any) -> None:
        raise RuntimeError("the host app's bug")

    with signals.order_created.connected_to(broken, sender=app):
        response = confirm(app, session_id, payment_id, pi)

    assert (response.status_code, response.get_json()) == (200, {"outcome": "approved"})
    assert received.names() == ["payment_succeeded", "order_created"]
    assert store(app).find_order_by_cart(cart_id) is not None


def test_signals_of_one_app_do_not_reach_another(make_app, app, received) -> None:
    other = make_app(STRIPE_WEBHOOK_SIGNING_SECRET=SECRETS[0])
    _, payment_id, pi = stored_payment(other)
    assert paid(other, payment_id, pi).status_code == 200
    assert received.calls == []


# -- external gateways --------------------------------------------------------------------


def test_a_gateways_payment_intent_sends_its_signal_with_no_payment_once_claimed(make_app) -> None:
    app = make_app(STRIPE_WEBHOOK_SIGNING_SECRET=SECRETS[0], COMMERCELAYER_SHARED_SECRET=cl.SHARED_SECRET,
                   COMMERCELAYER_CALLBACK_URL=cl.CALLBACK_URL)
    marked = {"id": "pi_gateway", "object": "payment_intent", "amount": 3000, "currency": "eur",
              "status": "requires_capture", "metadata": {"psp_gateway": "commercelayer"}}
    with connected(app) as received:
        unsettled = event("payment_intent.amount_capturable_updated",
                          {**marked, "metadata": {**marked["metadata"], "cl_request_key": "cl-authorize-unknown"}})
        assert post_event(app.test_client(), unsettled).status_code == 503  # not claimed yet: Stripe retries
        assert received.calls == []
        claimed = event("payment_intent.amount_capturable_updated", marked)
        assert post_event(app.test_client(), claimed).status_code == 200
        assert post_event(app.test_client(), claimed).status_code == 200  # duplicate

    assert received.names() == ["payment_succeeded"]
    assert received.of("payment_succeeded") == {"payment": None, "event_id": claimed["id"], "stripe_object": marked}


# -- the README's example -----------------------------------------------------------------


def test_the_readme_example_runs_as_written(tmp_path, monkeypatch, caplog) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    code = readme.split("### Signals for host apps", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    for key, value in {"STRIPE_SECRET_KEY": "sk_test_readme", "STRIPE_WEBHOOK_SIGNING_SECRET": SECRETS[0],
                       "PSP_DATABASE_URL": f"sqlite:///{tmp_path}/readme.db", "PSP_STALE_PAYMENTS": "flag"}.items():
        monkeypatch.setenv(key, value)
    example: dict[str, Any] = {"__name__": "readme_example"}
    exec(compile(code, "README.md", "exec"), example)  # the README's own code, as a reader would run it
    app = example["app"]
    caplog.set_level(logging.INFO, logger=app.logger.name)
    try:
        cart_id, payment_id, pi = stored_payment(app)
        assert paid(app, payment_id, pi).status_code == 200
        stale_cart, stale_id, stale_pi = stored_payment(app)
        store(app).update_cart(stale_cart, shipping_amount=500)
        assert paid(app, stale_id, stale_pi).status_code == 200
    finally:
        store(app).database.dispose()
    order = store(app).find_order_by_cart(cart_id)
    assert f"Order {order.order_number} placed for cart {cart_id}" in caplog.text
    assert f"Payment {stale_id} needs a decision: cart_changed" in caplog.text


# -- helpers ----------------------------------------------------------------------------------


class connected:  # noqa: N801 (used as a context manager, like blinker's own)
    """Receive every signal of ``app`` for the duration of the block."""

    def __init__(self, app: Flask) -> None:
        self.received = Received(app)
        self.stack = ExitStack()

    def __enter__(self) -> Received:
        for name, signal in signals.SIGNALS.items():
            self.stack.enter_context(signal.connected_to(self.received.receiver(name), sender=self.received.app))
        return self.received

    def __exit__(self, *exc: object) -> None:
        self.stack.close()


def checkout(app: Flask) -> tuple[str, str, str, str]:
    """A session on a 30.00 EUR cart with a payment waiting for its PaymentIntent: (cart, session, payment, pi)."""
    cart_id, session_id = open_checkout(app)
    n = next(_ids)
    payment_id, pi = f"00000000-0000-4000-9000-{n:012d}", f"pi_signal{n:06d}"
    money = Money.of(3000, "EUR")
    store(app).create_payment(PaymentDraft(payment_id, cart_id, money, "checkout-stripe", pi, f"{pi}_secret",
                                           (TransactionDraft(T.AUTHORIZATION, S.INITIAL, money, pi),)))
    return cart_id, session_id, payment_id, pi


def confirm(app: Flask, session_id: str, payment_id: str, pi: str) -> Any:
    return app.test_client().post(f"/confirmPayments/{payment_id}", json={"paymentIntent": pi},
                                  headers={"X-Session-Id": session_id})


def test_every_signal_name_is_the_documented_module_attribute() -> None:
    assert {name: getattr(signals, name) for name in signals.SIGNALS} == signals.SIGNALS
    assert len(set(map(id, signals.SIGNALS.values()))) == 6
