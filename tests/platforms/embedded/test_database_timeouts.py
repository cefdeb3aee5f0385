"""A stuck row lock costs one request a few seconds, not the whole site."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import create_engine, text

from flask_psp_connector.platforms.embedded.database import normalize_database_url
from tests.conftest import AppFactory, _reset_postgres, open_checkout
from tests.webhook_support import SECRETS, event, intent, post_event, stored_payment

HELD_FOR = 8  # seconds the lock is held; long enough to tell a timeout from a wait


@contextmanager
def locked_payment(database_url: str, payment_id: str) -> Iterator[None]:
    """Hold the payment's row lock (PostgreSQL) or SQLite's write lock in another connection."""
    engine = create_engine(normalize_database_url(database_url))
    try:
        with engine.connect() as holder:
            if engine.dialect.name == "sqlite":
                holder.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                holder.begin()
                holder.execute(text("SELECT id FROM psp_payments WHERE id = :id FOR UPDATE"), {"id": payment_id})
            yield
            holder.rollback()
    finally:
        engine.dispose()


def deliver_in_background(app: Flask, body: dict[str, Any]) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def deliver() -> None:
        started = time.monotonic()
        outcome["response"] = post_event(app.test_client(), body)
        outcome["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=deliver, daemon=True)
    thread.start()
    return thread, outcome


def test_a_webhook_waiting_on_a_locked_payment_answers_503_while_others_are_served(
    make_app: AppFactory, database_url: str
) -> None:
    app = make_app(PSP_DATABASE_URL=database_url, STRIPE_WEBHOOK_SIGNING_SECRET=",".join(SECRETS),
                   PSP_DATABASE_LOCK_TIMEOUT=1000)
    cart_id, payment_id, pi_id = stored_payment(app)
    _other_cart, session_id = open_checkout(app)
    body = event("payment_intent.succeeded", intent(pi_id, payment_id, status="succeeded", received=3000))
    with locked_payment(database_url, payment_id):
        thread, outcome = deliver_in_background(app, body)
        started = time.monotonic()
        served = app.test_client().get("/operations/config", headers={"X-Session-Id": session_id})
        assert served.status_code == 200 and time.monotonic() - started < 3
        thread.join(HELD_FOR)
    thread.join(HELD_FOR)
    assert outcome["response"].status_code == 503, outcome
    assert outcome["seconds"] < 5  # 1 s of lock timeout, far from the 8 s the lock is held
    app.extensions["psp_connector"].platform.get_payment(payment_id)  # the store works again
    assert post_event(app.test_client(), body).status_code == 200  # Stripe's retry lands
    assert app.extensions["psp_connector"].platform.find_order_by_cart(cart_id) is not None


@pytest.mark.postgres
def test_postgres_sessions_carry_the_configured_timeouts(make_app: AppFactory) -> None:
    app = make_app(PSP_DATABASE_URL=_reset_postgres(), PSP_DATABASE_LOCK_TIMEOUT=1500,
                   PSP_DATABASE_STATEMENT_TIMEOUT=20000, PSP_DATABASE_IDLE_IN_TRANSACTION_TIMEOUT=45000)
    with app.extensions["psp_connector"].database.engine.connect() as connection:
        shown = {name: connection.execute(text(f"SHOW {name}")).scalar_one()
                 for name in ("lock_timeout", "statement_timeout", "idle_in_transaction_session_timeout")}
    assert shown == {"lock_timeout": "1500ms", "statement_timeout": "20s", "idle_in_transaction_session_timeout": "45s"}
