"""The official Stripe CLI (npm ``@stripe/cli``, see package.json) drives the sandbox.

``stripe trigger <event> --api-base <double> --api-key <sandbox key>`` runs Stripe's own
fixtures, unmodified, against the Stripe API double; the events it causes reach the
demo shop signed with the secret the sandbox was given, and end in the right
transactions (``--override payment_intent:metadata.ct_payment_id=<id>`` aims them at one
of our payments) or are recorded as belonging to no payment of ours.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import requests
import stripe

from demo_shop import create_app
from flask_psp_connector.domain.payment import Payment
from flask_psp_connector.platforms.embedded.store import LocalPlatform
from flask_psp_connector.sandbox import SECRET_KEY, sandbox_config, trigger_command
from flask_psp_connector.testing import free_port
from tests.browser_support import serving, wait_for
from tests.conftest import open_checkout

ROOT = Path(__file__).resolve().parents[2]
STRIPE_CLI = ROOT / "node_modules" / ".bin" / "stripe"
GIVEN_SECRET = f"whsec_given_{secrets.token_hex(12)}"
NOT_OURS = "belongs to no payment of ours"


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: Any) -> Iterator[SimpleNamespace]:
    """The demo shop in sandbox mode, given a webhook signing secret."""
    assert STRIPE_CLI.exists(), "the Stripe CLI is missing: run `make test` or `npm install --no-package-lock`"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    folder = tmp_path_factory.mktemp("cli")
    with sandbox_config(url, name=f"cli-{port}", signing_secret=GIVEN_SECRET) as config:
        app = create_app({**config, "TESTING": True, "SECRET_KEY": "cli-test-secret", "SESSION_COOKIE_SECURE": False,
                          "PSP_DATABASE_URL": f"sqlite:///{folder / 'shop.sqlite3'}", "CTP_PROJECT_KEY": "shop"})
        with serving(app, port):
            yield SimpleNamespace(app=app, api=config["STRIPE_API_BASE"], platform=app.extensions["psp_connector"].platform,
                                  home=folder, secret=config["STRIPE_WEBHOOK_SIGNING_SECRET"])


def trigger(sandbox: SimpleNamespace, event: str, *overrides: str) -> str:
    """Run ``stripe trigger`` as the shop prints it; return the CLI's output."""
    command = trigger_command(sandbox.api, event).split()
    command[0] = str(STRIPE_CLI)
    for override in overrides:
        command += ["--override", override]
    env = {**os.environ, "HOME": str(sandbox.home), "XDG_CONFIG_HOME": str(sandbox.home / "config")}
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    output = done.stdout + done.stderr
    assert done.returncode == 0 and "Trigger succeeded" in output, output
    return output


def receipts(sandbox: SimpleNamespace, event_type: str) -> list[Any]:
    return [r for r in sandbox.platform.recent_events(500) if r.event_type == event_type]


def _payment_with(sandbox: SimpleNamespace, payment_id: str, entry: tuple[str, str, int]) -> Payment | None:
    """The payment once it holds a transaction ``(type, state, cents)``, else ``None``."""
    payment = sandbox.platform.get_payment(payment_id)
    return payment if entry in summary(payment) else None


def summary(payment: Payment) -> list[tuple[str, str, int]]:
    return sorted((t.type.value, t.state.value, t.amount.cent_amount) for t in payment.transactions)


def our_payment(sandbox: SimpleNamespace) -> tuple[str, str]:
    """A checkout of ours (EUR 30.00) with its payment created; return (cart id, payment id)."""
    cart_id, session_id = open_checkout(sandbox.app)
    answer = sandbox.app.test_client().post("/payments", json={}, headers={"X-Session-Id": session_id})
    assert answer.status_code == 200, answer.get_json()
    return cart_id, answer.get_json()["paymentReference"]


def aimed_at(payment_id: str) -> tuple[str, ...]:
    """Overrides that make the fixture's PaymentIntent one of ours, for our amount."""
    return (f"payment_intent:metadata.ct_payment_id={payment_id}", "payment_intent:amount=3000",
            "payment_intent:currency=eur")


@contextmanager
def make_run(tmp_path: Path, **env: str) -> Iterator[tuple[list[str], str]]:
    """``python -m demo_shop`` (what ``make run`` starts) without Stripe keys: its first
    printed lines and its database URL."""
    database = f"sqlite:///{tmp_path / 'run.sqlite3'}"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "PSP_DATABASE"))}
    process = subprocess.Popen([sys.executable, "-m", "demo_shop"], cwd=ROOT, text=True, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, env={**clean, "PORT": str(free_port()), "HOME": str(tmp_path),
                                                               "PSP_DATABASE_URL": database, **env})
    try:
        assert process.stdout is not None
        yield [process.stdout.readline().strip() for _ in range(3)], database
    finally:
        process.terminate()
        process.wait(10)


def test_make_run_prints_the_trigger_line_and_honours_the_given_secret(tmp_path) -> None:
    with make_run(tmp_path, STRIPE_WEBHOOK_SIGNING_SECRET=GIVEN_SECRET) as (lines, database):
        assert lines[0].startswith("Sandbox mode: payments go to a local Stripe double at http://127.0.0.1:")
        assert lines[1] == f"Webhook signing secret: {GIVEN_SECRET} (from STRIPE_WEBHOOK_SIGNING_SECRET)"
        command = lines[2].split(": ", 1)[1]
        assert command.startswith("node_modules/.bin/stripe trigger payment_intent.succeeded --api-base http://127.0.0.1:")
        done = subprocess.run(command.split(), cwd=ROOT, capture_output=True, text=True, timeout=120,
                              env={**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")})
        assert "Trigger succeeded" in done.stdout + done.stderr
        store = LocalPlatform.from_url(database)
        try:
            received = wait_for(lambda: [r for r in store.recent_events(50) if r.event_type == "payment_intent.succeeded"])
        finally:
            store.database.dispose()
        assert [(r.status.value, r.detail) for r in received] == [("ignored", NOT_OURS)]  # signed with the given secret


def test_make_run_generates_and_prints_a_secret_when_none_is_given(tmp_path) -> None:
    with make_run(tmp_path) as (lines, _):
        secret = lines[1].removeprefix("Webhook signing secret: ").split(" ")[0]
        assert secret.startswith("whsec_") and len(secret) > 20
        assert lines[1].endswith("(generated; set STRIPE_WEBHOOK_SIGNING_SECRET to keep one)")


@pytest.mark.parametrize(("event", "sent"), [
    ("payment_intent.succeeded", ["charge.succeeded", "payment_intent.succeeded"]),
    ("payment_intent.payment_failed", ["payment_intent.payment_failed"]),
    ("payment_intent.canceled", ["payment_intent.canceled"]),
    ("charge.succeeded", ["charge.succeeded", "payment_intent.succeeded"]),
    ("charge.refunded", ["charge.refunded", "refund.created"]),
    ("charge.dispute.created", ["charge.dispute.created"]),
])
def test_stripe_trigger_reaches_the_shop_signed_and_is_not_ours(sandbox, event, sent) -> None:
    before = {t: len(receipts(sandbox, t)) for t in sent}
    trigger(sandbox, event)
    for event_type in sent:
        # Received means the signature checked out against the given secret (else 400, nothing stored).
        new = wait_for(lambda event_type=event_type: receipts(sandbox, event_type)[: len(receipts(sandbox, event_type))
                                                                                     - before[event_type]])
        assert all(r.status.value == "ignored" and NOT_OURS in r.detail for r in new), [(r.status, r.detail) for r in new]


@pytest.mark.parametrize("event", ["charge.failed", "charge.captured", "payment_intent.requires_action",
                                   "payment_intent.amount_capturable_updated", "charge.dispute.closed"])
def test_more_of_stripes_fixtures_run_unmodified_and_cause_their_event(sandbox, event) -> None:
    def logged() -> int:
        return len(requests.get(f"{sandbox.api}/v1/events", params={"type": event, "limit": 100},
                                auth=(SECRET_KEY, ""), timeout=10).json()["data"])

    before = logged()
    trigger(sandbox, event)
    assert logged() == before + 1


def test_payment_intent_succeeded_aimed_at_our_payment_pays_it_and_makes_the_order(sandbox) -> None:
    cart_id, payment_id = our_payment(sandbox)
    trigger(sandbox, "payment_intent.succeeded", *aimed_at(payment_id))
    payment = wait_for(lambda: (p := sandbox.platform.get_payment(payment_id)) and p.method
                       and {("Authorization", "Success", 3000), ("Charge", "Success", 3000)} <= set(summary(p)) and p)
    assert payment.method == "card"  # from charge.succeeded
    wait_for(lambda: sandbox.platform.find_order_by_cart(cart_id))


def test_payment_intent_payment_failed_aimed_at_our_payment_records_the_failure(sandbox) -> None:
    cart_id, payment_id = our_payment(sandbox)
    trigger(sandbox, "payment_intent.payment_failed", *aimed_at(payment_id))
    payment = wait_for(lambda: _payment_with(sandbox, payment_id, ("Authorization", "Failure", 3000)))
    assert ("Charge", "Success", 3000) not in summary(payment)
    assert sandbox.platform.find_order_by_cart(cart_id) is None


def test_payment_intent_canceled_aimed_at_our_payment_cancels_it(sandbox) -> None:
    _, payment_id = our_payment(sandbox)
    trigger(sandbox, "payment_intent.canceled", *aimed_at(payment_id))
    payment = wait_for(lambda: (p := sandbox.platform.get_payment(payment_id))
                       and ("CancelAuthorization", "Success", 3000) in summary(p) and p)
    assert ("Authorization", "Failure", 3000) in summary(payment)


def test_charge_refunded_aimed_at_our_payment_records_the_refund(sandbox) -> None:
    _, payment_id = our_payment(sandbox)
    trigger(sandbox, "charge.refunded", *aimed_at(payment_id))
    payment = wait_for(lambda: _payment_with(sandbox, payment_id, ("Refund", "Success", 3000)))
    assert ("Charge", "Success", 3000) in summary(payment)


def test_charge_dispute_created_aimed_at_our_payment_reaches_it_but_names_another_payment_intent(sandbox) -> None:
    # The fixture pays a PaymentIntent of its own; the override puts our id in its metadata,
    # which the PaymentIntent and Charge events carry. A Dispute has no metadata: it names
    # the fixture's PaymentIntent, not ours, so it is not ours (as with Stripe itself).
    _, payment_id = our_payment(sandbox)
    trigger(sandbox, "charge.dispute.created", *aimed_at(payment_id))
    payment = wait_for(lambda: _payment_with(sandbox, payment_id, ("Charge", "Success", 3000)))
    disputes = wait_for(lambda: [r for r in receipts(sandbox, "charge.dispute.created")
                                 if r.event_id in _events_of(sandbox, payment)])
    assert [(r.status.value, r.detail) for r in disputes] == [("ignored", NOT_OURS)]


def _events_of(sandbox: SimpleNamespace, payment: Payment) -> set[str]:
    """Ids of the double's dispute events about the PaymentIntents that paid ``payment``."""
    intents = {t.interaction_id for t in payment.transactions}
    listed = requests.get(f"{sandbox.api}/v1/events", params={"type": "charge.dispute.created", "limit": 100},
                          auth=(SECRET_KEY, ""), timeout=10).json()["data"]
    return {e["id"] for e in listed if e["data"]["object"]["payment_intent"] in intents}


def test_a_payment_with_the_dispute_card_gets_a_chargeback_and_closing_it_loses_it(sandbox) -> None:
    cart_id, payment_id = our_payment(sandbox)
    payment = sandbox.platform.get_payment(payment_id)
    confirmed = requests.post(f"{sandbox.api}/v1/payment_intents/{payment.interface_id}/confirm", auth=(SECRET_KEY, ""),
                              data={"payment_method": "pm_card_createDispute"}, timeout=10)
    assert confirmed.json()["status"] == "succeeded"
    pending = wait_for(lambda: _payment_with(sandbox, payment_id, ("Chargeback", "Pending", 3000)))
    assert ("Charge", "Success", 3000) in summary(pending)
    dispute = requests.get(f"{sandbox.api}/v1/disputes", params={"payment_intent": payment.interface_id},
                           auth=(SECRET_KEY, ""), timeout=10).json()["data"][0]
    assert (dispute["status"], dispute["reason"], dispute["amount"]) == ("needs_response", "fraudulent", 3000)
    requests.post(f"{sandbox.api}/v1/disputes/{dispute['id']}/close", auth=(SECRET_KEY, ""), timeout=10).raise_for_status()
    wait_for(lambda: ("Chargeback", "Success", 3000) in summary(sandbox.platform.get_payment(payment_id)))


def test_events_signed_with_another_secret_are_refused(sandbox) -> None:
    payload = json.dumps({"id": "evt_other", "object": "event", "type": "payment_intent.succeeded", "data": {"object": {}}})
    signature = stripe.WebhookSignature.generate_signature_header(payload, "whsec_not_the_given_one")
    response = sandbox.app.test_client().post("/stripe/webhooks", data=payload,
                                              headers={"Stripe-Signature": signature, "Content-Type": "application/json"})
    assert response.status_code == 400
    assert [r for r in sandbox.platform.recent_events(500) if r.event_id == "evt_other"] == []

