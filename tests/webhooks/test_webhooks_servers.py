"""Webhooks through real servers: gunicorn workers on PostgreSQL, and localstripe's own deliveries."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
import stripe
from werkzeug.serving import make_server

from flask_psp_connector.domain.payment import TransactionDraft, TransactionState
from flask_psp_connector.domain.payment import TransactionType as T
from flask_psp_connector.platforms.embedded.store import LocalPlatform
from flask_psp_connector.ports import PaymentDraft
from tests.conftest import _reset_postgres, open_checkout
from tests.server_support import gunicorn
from tests.webhook_support import SECRETS, event, intent, sign, stored_payment, summary

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def _gunicorn(tmp_path: Path, **env: str) -> Iterator[tuple[str, LocalPlatform]]:
    """Three gunicorn worker processes serving the connector on the PostgreSQL test database."""
    url = _reset_postgres()
    env = {"PSP_DATABASE_URL": url, "STRIPE_SECRET_KEY": "sk_test_server", "STRIPE_WEBHOOK_SIGNING_SECRET": SECRETS[0],
           "HOME": str(tmp_path), **env}
    with gunicorn(env, "--workers", "3") as base:
        store = LocalPlatform.from_url(url)
        yield base, store
        store.database.dispose()


@pytest.fixture
def gunicorn_on_postgres(tmp_path: Path) -> Iterator[tuple[str, LocalPlatform]]:
    """Three gunicorn worker processes serving the connector on the PostgreSQL test database."""
    with _gunicorn(tmp_path) as served:
        yield served


@pytest.mark.postgres
def test_the_same_event_to_many_workers_at_once_has_one_effect(gunicorn_on_postgres) -> None:
    base, store = gunicorn_on_postgres
    cart_id, payment_id, pi = stored_payment(store)
    payload = json.dumps(event("payment_intent.succeeded", intent(pi, payment_id, status="succeeded", received=3000)))
    headers = {"Stripe-Signature": sign(payload), "Content-Type": "application/json"}
    barrier = threading.Barrier(12)

    def deliver(_: int) -> int:
        barrier.wait()
        return requests.post(f"{base}/stripe/webhooks", data=payload, headers=headers, timeout=30).status_code

    with ThreadPoolExecutor(12) as pool:
        statuses = list(pool.map(deliver, range(12)))
    assert statuses == [200] * 12
    assert summary(store.get_payment(payment_id)) == [("Authorization", "Success", pi, 3000), ("Charge", "Success", pi, 3000)]
    assert store.find_order_by_cart(cart_id) is not None
    with store.database.transaction() as session:
        from sqlalchemy import text

        assert session.scalar(text("SELECT count(*) FROM psp_orders WHERE cart_id = :c"), {"c": cart_id}) == 1
        assert session.scalar(text("SELECT count(*) FROM psp_stripe_events")) == 1


def _wait_for(condition: Any, timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_localstripe_delivers_signed_events_end_to_end(make_app, stripe_double, stripe_double_client) -> None:
    requests.delete(f"{stripe_double}/_config/data", timeout=5)
    app = make_app(STRIPE_API_BASE=stripe_double, STRIPE_PAYMENT_METHOD_TYPES="card",
                   STRIPE_WEBHOOK_SIGNING_SECRET="whsec_localstripe_e2e")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hook = {"url": f"http://127.0.0.1:{server.server_port}/stripe/webhooks", "secret": "whsec_localstripe_e2e",
            "events": ["payment_intent.succeeded", "payment_intent.payment_failed"]}
    requests.post(f"{stripe_double}/_config/webhooks/connector", json=hook, timeout=5).raise_for_status()
    store = app.extensions["psp_connector"].platform
    client = app.test_client()
    try:
        # a successful payment: the double's signed payment_intent.succeeded makes the order
        cart_id, session_id = open_checkout(app)
        body = client.get("/payments", headers={"X-Session-Id": session_id}).get_json()
        pi_id = body["clientSecret"].split("_secret_")[0]
        stripe_double_client.v1.payment_intents.update(pi_id, params={"payment_method": "pm_card_visa"})
        stripe_double_client.v1.payment_intents.confirm(pi_id)
        order = _wait_for(lambda: store.find_order_by_cart(cart_id))
        assert order.payment_state == "Paid"

        # a declined one: payment_intent.payment_failed marks the authorization failed
        declined_cart, declined_session = open_checkout(app)
        declined = client.get("/payments", headers={"X-Session-Id": declined_session}).get_json()
        declined_pi = declined["clientSecret"].split("_secret_")[0]
        card = stripe_double_client.v1.payment_methods.create(params={"type": "card", "card": {
            "number": "4000000000000341", "exp_month": 12, "exp_year": 2034, "cvc": "123"}})
        stripe_double_client.v1.payment_intents.update(declined_pi, params={"payment_method": card.id})
        with pytest.raises(stripe.CardError):
            stripe_double_client.v1.payment_intents.confirm(declined_pi)
        failed = ("Authorization", "Failure", declined_pi, 3000)
        _wait_for(lambda: failed in summary(store.get_payment(declined["paymentReference"])))
        assert store.find_order_by_cart(declined_cart) is None
    finally:
        hook["events"] = []  # the double cannot delete a registration; switch it off
        requests.post(f"{stripe_double}/_config/webhooks/connector", json=hook, timeout=5)
        server.shutdown()


def _deliver_all_at_once(base: str, paid: list[dict[str, Any]], copies: int = 6) -> list[int]:
    """Each PaymentIntent's payment_intent.succeeded, ``copies`` times, all sent at once."""
    payloads = [json.dumps(event("payment_intent.succeeded", intent)) for intent in paid] * copies
    barrier = threading.Barrier(len(payloads))

    def deliver(payload: str) -> int:
        barrier.wait()
        headers = {"Stripe-Signature": sign(payload), "Content-Type": "application/json"}
        return requests.post(f"{base}/stripe/webhooks", data=payload, headers=headers, timeout=60).status_code

    with ThreadPoolExecutor(len(payloads)) as pool:
        return list(pool.map(deliver, payloads))


@pytest.mark.postgres
def test_a_stale_and_a_current_payment_delivered_at_once_to_many_workers(
    tmp_path, make_app, stripe_double, stripe_double_client
) -> None:
    """Both tabs paid; each one's payment_intent.succeeded delivered six times, all at once,
    across three workers: one order for what the current payment paid, one refund."""
    from tests.processor.test_stale_payments import CHANGES, browser_pays, create_payment, refunds_at_the_double

    requests.delete(f"{stripe_double}/_config/data", timeout=5)
    with _gunicorn(tmp_path, STRIPE_API_BASE=stripe_double) as (base, store):
        app = make_app(STRIPE_API_BASE=stripe_double, STRIPE_PAYMENT_METHOD_TYPES="card",
                       PSP_DATABASE_URL=store.database.engine.url.render_as_string(hide_password=False))
        cart_id, session_id = open_checkout(app)
        old = create_payment(app, session_id)
        old_paid = browser_pays(stripe_double_client, old)
        store.update_cart(cart_id, **CHANGES["item added"])
        new = create_payment(app, session_id)
        new_paid = browser_pays(stripe_double_client, new)

        assert _deliver_all_at_once(base, [old_paid, new_paid]) == [200] * 12

        order = store.find_order_by_cart(cart_id)
        assert order.total_price == store.get_cart(cart_id).total_price == store.get_payment(
            new["paymentReference"]).amount_planned
        assert [(i.sku, i.quantity) for i in order.line_items] == [("tee-blue", 2), ("kettle", 5)]
        assert order.payment_state == "Paid"
        stale = store.get_payment(old["paymentReference"])
        assert stale.stale_reason == "cart_changed" and len(stale.transactions_of(T.REFUND)) == 1
        assert refunds_at_the_double(stripe_double_client, old_paid) == [3000]
        assert refunds_at_the_double(stripe_double_client, new_paid) == []


@pytest.mark.postgres
def test_two_payments_of_one_cart_state_delivered_at_once_keep_one_charge(
    tmp_path, make_app, stripe_double, stripe_double_client
) -> None:
    """Two PaymentIntents for the same cart state (a wallet and a card, say), both paid and
    settled at once across workers: the cart's row lock lets one place the order; the other
    is found to pay the cart a second time and is refunded once."""
    from tests.processor.test_stale_payments import browser_pays, create_payment, refunds_at_the_double

    requests.delete(f"{stripe_double}/_config/data", timeout=5)
    with _gunicorn(tmp_path, STRIPE_API_BASE=stripe_double) as (base, store):
        app = make_app(STRIPE_API_BASE=stripe_double, STRIPE_PAYMENT_METHOD_TYPES="card",
                       PSP_DATABASE_URL=store.database.engine.url.render_as_string(hide_password=False))
        cart_id, session_id = open_checkout(app)
        card = create_payment(app, session_id)
        cart = store.get_cart(cart_id)
        wallet_id = "00000000-0000-4000-8000-00000000wall"
        wallet_intent = stripe_double_client.v1.payment_intents.create(params={
            "amount": 3000, "currency": "eur", "payment_method_types": ["card"],
            "metadata": {"ct_payment_id": wallet_id}})
        money = cart.total_price
        store.create_payment(PaymentDraft(
            wallet_id, cart_id, money, "checkout-stripe", wallet_intent.id, wallet_intent.client_secret,
            (TransactionDraft(T.AUTHORIZATION, TransactionState.INITIAL, money, wallet_intent.id),),
            cart_fingerprint=cart.fingerprint, cart_version=cart.version))
        paid = [browser_pays(stripe_double_client, card),
                browser_pays(stripe_double_client, {"clientSecret": wallet_intent.client_secret})]

        assert _deliver_all_at_once(base, paid) == [200] * 12

        order = store.find_order_by_cart(cart_id)
        assert order.payment_state == "Paid" and order.total_price.cent_amount == 3000
        payments = [store.get_payment(card["paymentReference"]), store.get_payment(wallet_id)]
        assert sorted(str(p.stale_reason) for p in payments) == ["None", "already_paid"]
        assert sorted(len(refunds_at_the_double(stripe_double_client, intent)) for intent in paid) == [0, 1]
