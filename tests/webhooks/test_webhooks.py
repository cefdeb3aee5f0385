"""POST /stripe/webhooks: verification, every event type, exactly-once, any order."""

from __future__ import annotations

import itertools
import json
import threading
import time
from typing import Any

import pytest
import requests
import responses
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from flask_psp_connector.domain.inbox import EventStatus
from flask_psp_connector.domain.model import CartState
from flask_psp_connector.domain.payment import TransactionType
from flask_psp_connector.platforms.embedded import payments as hot_path
from flask_psp_connector.platforms.embedded.schema import StripeEventRow, TransactionRow
from flask_psp_connector.webhooks.events import EventProcessor
from tests.conftest import STRIPE_API
from tests.webhook_support import (
    SECRETS,
    charge,
    dispute,
    event,
    intent,
    post_event,
    refund,
    sign,
    stored_payment,
    summary,
)


@pytest.fixture
def app(make_app):
    return make_app(STRIPE_WEBHOOK_SIGNING_SECRET=",".join(SECRETS))


def store(app) -> Any:
    return app.extensions["psp_connector"].platform


def rows(app, table) -> int:
    with store(app).database.transaction() as session:
        return session.scalar(select(func.count()).select_from(table))


# -- verification -------------------------------------------------------------------


def test_missing_signature_is_401_and_writes_nothing(app, client) -> None:
    _, payment_id, pi = stored_payment(app)
    response = client.post("/stripe/webhooks", json=event("payment_intent.succeeded", intent(pi, payment_id, status="succeeded")))
    assert response.status_code == 401
    assert response.get_json()["errors"][0]["code"] == "invalid_token"
    assert rows(app, StripeEventRow) == 0


def _tampered(payload: str) -> tuple[str, str]:
    return payload.replace("3000", "1"), sign(payload)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (_tampered, "No signatures found"),
        (lambda p: (p, sign(p, secret="whsec_someone_else")), "No signatures found"),
        (lambda p: (p, sign(p, timestamp=1_000_000_000)), "tolerance"),
        (lambda p: (p, "t=123,v1=deadbeef"), ""),
        (lambda p: (p, "garbage"), ""),
        (lambda p: ("not json", sign("not json")), "not JSON"),
        (lambda p: ('{"hello": "world"}', sign('{"hello": "world"}')), "not a Stripe event"),
        (lambda p: ("[1, 2]", sign("[1, 2]")), "not a Stripe event"),
    ],
)
def test_refused_payloads_are_400_text_and_write_nothing(app, client, make, reason) -> None:
    _, payment_id, pi = stored_payment(app)
    paid = intent(pi, payment_id, status="succeeded", received=3000)
    payload, header = make(json.dumps(event("payment_intent.succeeded", paid)))
    response = client.post("/stripe/webhooks", data=payload, headers={"Stripe-Signature": header},
                           content_type="application/json")
    assert response.status_code == 400
    assert response.mimetype == "text/plain"
    assert response.get_data(as_text=True).startswith("Webhook Error:")
    assert reason in response.get_data(as_text=True)
    assert rows(app, StripeEventRow) == 0
    assert summary(store(app).get_payment(payment_id)) == [("Authorization", "Initial", pi, 3000)]


def test_huge_body_is_413_and_writes_nothing(app, client) -> None:
    payload = json.dumps(event("payment_intent.succeeded", {"id": "pi_x", "object": "payment_intent", "pad": "x" * 300_000}))
    response = client.post("/stripe/webhooks", data=payload, headers={"Stripe-Signature": sign(payload)})
    assert response.status_code == 413
    assert rows(app, StripeEventRow) == 0


def test_rotated_secret_is_still_accepted(app, client) -> None:
    _, payment_id, pi = stored_payment(app)
    processing = event("payment_intent.processing", intent(pi, payment_id, status="processing"))
    response = post_event(client, processing, secret=SECRETS[1])
    assert response.status_code == 200


def test_without_a_configured_secret_stripe_is_asked_to_retry(make_app) -> None:
    client = make_app().test_client()
    response = post_event(client, event("payment_intent.processing", intent("pi_1", None, status="processing")))
    assert response.status_code == 503


# -- event types -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (lambda pi, p: [event("payment_intent.succeeded", intent(pi, p, status="succeeded", received=3000))],
         [("Authorization", "Success", "{pi}", 3000), ("Charge", "Success", "{pi}", 3000)]),
        (lambda pi, p: [event("payment_intent.processing", intent(pi, p, status="processing"))],
         [("Authorization", "Pending", "{pi}", 3000)]),
        (lambda pi, p: [event("payment_intent.payment_failed", intent(pi, p, status="requires_payment_method"))],
         [("Authorization", "Failure", "{pi}", 3000)]),
        (lambda pi, p: [event("payment_intent.canceled", intent(pi, p, status="canceled"))],
         [("Authorization", "Failure", "{pi}", 3000), ("CancelAuthorization", "Success", "{pi}", 3000)]),
        (lambda pi, p: [event("payment_intent.requires_action", intent(pi, p, status="requires_action"))],
         [("Authorization", "Initial", "{pi}", 3000)]),
        (lambda pi, p: [event("charge.succeeded", charge(pi, captured=False))],
         [("Authorization", "Success", "{pi}", 3000)]),
        (lambda pi, p: [event("charge.refunded",
                              charge(pi, refunds=[refund("re_1", pi, 500), refund("re_2", pi, 700, "pending")]))],
         [("Authorization", "Initial", "{pi}", 3000), ("Refund", "Pending", "re_2", 700), ("Refund", "Success", "re_1", 500)]),
        (lambda pi, p: [event("charge.refund.updated", refund("re_9", pi, 900, "pending")),
                        event("charge.refund.updated", refund("re_9", pi, 900, "succeeded"))],
         [("Authorization", "Initial", "{pi}", 3000), ("Refund", "Success", "re_9", 900)]),
        (lambda pi, p: [event("charge.dispute.created", dispute("dp_1", pi, "needs_response")),
                        event("charge.dispute.closed", dispute("dp_1", pi, "lost"))],
         [("Authorization", "Initial", "{pi}", 3000), ("Chargeback", "Success", "dp_1", 3000)]),
        (lambda pi, p: [event("charge.dispute.created", dispute("dp_2", pi, "needs_response")),
                        event("charge.dispute.closed", dispute("dp_2", pi, "won"))],
         [("Authorization", "Initial", "{pi}", 3000), ("Chargeback", "Failure", "dp_2", 3000)]),
    ],
)
def test_each_event_type(app, client, build, expected) -> None:
    _, payment_id, pi = stored_payment(app)
    for item in build(pi, payment_id):
        assert post_event(client, item).status_code == 200
    assert summary(store(app).get_payment(payment_id)) == sorted(
        (t, s, i.format(pi=pi), a) for t, s, i, a in expected)


def test_events_are_found_by_payment_intent_when_metadata_is_missing(app, client) -> None:
    _, payment_id, pi = stored_payment(app)
    assert post_event(client, event("payment_intent.processing", intent(pi, None, status="processing"))).status_code == 200
    assert ("Authorization", "Pending", pi, 3000) in summary(store(app).get_payment(payment_id))


def test_a_refund_is_never_recorded_as_a_chargeback(app, client) -> None:
    _, payment_id, pi = stored_payment(app)
    post_event(client, event("charge.refunded", charge(pi, refunds=[refund("re_1", pi, 3000)])))
    assert not store(app).get_payment(payment_id).has(TransactionType.CHARGEBACK)


def test_refunds_not_embedded_are_fetched(app, client, stripe_mock) -> None:
    _, payment_id, pi = stored_payment(app)
    stripe_mock.add(responses.GET, f"{STRIPE_API}/v1/refunds", json={
        "object": "list", "data": [refund("re_a", pi, 1000), refund("re_b", pi, 500)], "has_more": False, "url": "/v1/refunds"})
    assert post_event(client, event("charge.refunded", charge(pi))).status_code == 200
    assert stripe_mock.calls[0].request.url.endswith(f"charge=ch_{pi[3:]}&limit=100")
    refunds = store(app).get_payment(payment_id).transactions_of(TransactionType.REFUND)
    assert sorted((t.interaction_id, t.amount.cent_amount) for t in refunds) == [("re_a", 1000), ("re_b", 500)]


def test_a_late_failure_never_undoes_a_success(app, client) -> None:
    _, payment_id, pi = stored_payment(app)
    post_event(client, event("payment_intent.succeeded", intent(pi, payment_id, status="succeeded", received=3000)))
    post_event(client, event("payment_intent.payment_failed", intent(pi, payment_id, status="requires_payment_method")))
    assert ("Authorization", "Success", pi, 3000) in summary(store(app).get_payment(payment_id))


# -- orders ------------------------------------------------------------------------


def test_succeeded_turns_the_cart_into_one_order_that_follows_its_payment(app, client) -> None:
    cart_id, payment_id, pi = stored_payment(app)
    succeeded = event("payment_intent.succeeded", intent(pi, payment_id, status="succeeded", received=3000))
    assert post_event(client, succeeded).status_code == 200
    assert post_event(client, event("payment_intent.succeeded", succeeded["data"]["object"])).status_code == 200
    order = store(app).find_order_by_cart(cart_id)
    assert order.payment_state == "Paid"
    assert order.total_price.cent_amount == 3000 and order.payment_ids == (payment_id,)
    assert [i.sku for i in order.line_items] == ["tee"] and order.customer_email == "jane@example.test"
    assert store(app).get_cart(cart_id).state == CartState.ORDERED
    post_event(client, event("charge.refunded", charge(pi, refunds=[refund("re_1", pi, 1000)])))
    assert store(app).find_order_by_cart(cart_id).payment_state == "PartiallyRefunded"
    post_event(client, event("charge.refunded", charge(pi, refunds=[refund("re_1", pi, 1000), refund("re_2", pi, 2000)])))
    assert store(app).find_order_by_cart(cart_id).payment_state == "Refunded"
    assert store(app).create_order(cart_id).id == order.id


def test_succeeded_settles_and_places_the_order_in_the_events_one_transaction(make_app, database_url) -> None:
    app = make_app(STRIPE_WEBHOOK_SIGNING_SECRET=",".join(SECRETS), PSP_DATABASE_URL=database_url)
    client = app.test_client()
    cart_id, payment_id, pi = stored_payment(app)
    succeeded = event("payment_intent.succeeded", intent(pi, payment_id, status="succeeded", received=3000))
    engine = store(app).database.engine
    transactions: list[str] = []

    def began(_connection: Any) -> None:
        transactions.append("transaction")

    def session_began(*_args: Any) -> None:
        transactions.append("ORM session")

    sqlalchemy_event.listen(engine, "begin", began)
    sqlalchemy_event.listen(Session, "after_begin", session_began)
    try:
        assert post_event(client, succeeded).status_code == 200
    finally:
        sqlalchemy_event.remove(engine, "begin", began)
        sqlalchemy_event.remove(Session, "after_begin", session_began)
    assert transactions == ["transaction"]
    order = store(app).find_order_by_cart(cart_id)
    assert order.payment_state == "Paid" and order.payment_ids == (payment_id,)
    assert order.shipping_address is not None and store(app).get_cart(cart_id).state == CartState.ORDERED


def test_order_ships_to_the_payment_intent_address_when_the_cart_has_none(app, client) -> None:
    cart_id, payment_id, pi = stored_payment(app, shipping=False)
    shipping = {"name": "Ada Lovelace", "phone": "+44", "address": {"line1": "1 Analytical Way", "line2": None,
                "city": "London", "postal_code": "N1", "state": None, "country": "GB"}}
    post_event(client, event("payment_intent.succeeded",
                             intent(pi, payment_id, status="succeeded", received=3000, shipping=shipping)))
    address = store(app).find_order_by_cart(cart_id).shipping_address
    assert (address.first_name, address.last_name, address.street_name, address.city, address.country) == (
        "Ada", "Lovelace", "1 Analytical Way", "London", "GB")


def test_order_ships_to_the_charge_billing_address_as_a_last_resort(app, client, stripe_mock) -> None:
    cart_id, payment_id, pi = stored_payment(app, shipping=False)
    billing = {"name": "Grace Hopper", "email": "g@example.test", "phone": None,
               "address": {"line1": "7 Cobol Rd", "line2": None, "city": "Arlington", "postal_code": "22201",
                           "state": "VA", "country": "US"}}
    stripe_mock.add(responses.GET, f"{STRIPE_API}/v1/charges/ch_{pi[3:]}", json=charge(pi, billing_details=billing))
    post_event(client, event("payment_intent.succeeded", intent(pi, payment_id, status="succeeded", received=3000)))
    assert store(app).find_order_by_cart(cart_id).shipping_address.city == "Arlington"


def test_no_stripe_call_when_the_cart_has_an_address(app, client, stripe_mock) -> None:
    _, payment_id, pi = stored_payment(app)
    post_event(client, event("payment_intent.succeeded", intent(pi, payment_id, status="succeeded", received=3000)))
    assert len(stripe_mock.calls) == 0


# -- exactly once ----------------------------------------------------------------------


def test_a_duplicate_event_has_no_effect(app, client) -> None:
    _, payment_id, pi = stored_payment(app)
    first = event("charge.refund.updated", refund("re_1", pi, 500))
    assert post_event(client, first).status_code == 200
    # same id, different content: the stored effect stands
    again = event("charge.refund.updated", refund("re_2", pi, 900), event_id=first["id"])
    assert post_event(client, again).status_code == 200
    refunds = store(app).get_payment(payment_id).transactions_of(TransactionType.REFUND)
    assert [(t.interaction_id, t.amount.cent_amount) for t in refunds] == [("re_1", 500)]
    assert rows(app, StripeEventRow) == 1


def test_events_of_no_payment_of_ours_are_acknowledged_and_logged(app, client, caplog) -> None:
    triggered = event("payment_intent.succeeded", intent("pi_from_stripe_trigger", None, status="succeeded"))
    with caplog.at_level("INFO", logger="flask_psp_connector.webhooks.events"):
        assert post_event(client, triggered).status_code == 200
    assert triggered["id"] in caplog.text and "no payment of ours" in caplog.text
    [receipt] = store(app).recent_events()
    assert receipt.status == EventStatus.IGNORED and receipt.event_id == triggered["id"]


SEQUENCE = (
    ("payment_intent.succeeded", lambda pi, p: intent(pi, p, status="succeeded", received=3000)),
    ("charge.succeeded", lambda pi, p: charge(pi)),
    ("charge.refunded", lambda pi, p: charge(pi, refunds=[refund("re_1", pi, 500)])),
    ("charge.refunded", lambda pi, p: charge(pi, refunds=[refund("re_1", pi, 500), refund("re_2", pi, 700)])),
    ("charge.dispute.created", lambda pi, p: dispute("dp_1", pi, "needs_response", amount=1800)),
)


def test_every_order_of_a_payments_events_converges(app, client) -> None:
    outcomes = set()
    for permutation in itertools.permutations(range(len(SEQUENCE))):
        cart_id, payment_id, pi = stored_payment(app)
        for index in permutation:
            kind, build = SEQUENCE[index]
            assert post_event(client, event(kind, build(pi, payment_id))).status_code == 200
        final = [(t, s, i.replace(pi, "PI"), a) for t, s, i, a in summary(store(app).get_payment(payment_id))]
        outcomes.add((tuple(final), store(app).find_order_by_cart(cart_id).payment_state))
    assert outcomes == {((
        ("Authorization", "Success", "PI", 3000), ("Charge", "Success", "PI", 3000),
        ("Chargeback", "Pending", "dp_1", 1800), ("Refund", "Success", "re_1", 500),
        ("Refund", "Success", "re_2", 700)), "PartiallyRefunded")}


# -- failures ------------------------------------------------------------------------


def test_store_failure_mid_event_is_5xx_with_nothing_written_then_the_retry_succeeds(app, client, monkeypatch) -> None:
    cart_id, payment_id, pi = stored_payment(app)
    succeeded = event("payment_intent.succeeded", intent(pi, payment_id, status="succeeded", received=3000))

    def broken(*args: Any) -> None:
        raise OperationalError("INSERT INTO psp_orders", {}, Exception("disk I/O error"))

    monkeypatch.setattr(hot_path, "new_order", broken)
    monkeypatch.setattr(hot_path, "place_order_work", broken)  # PostgreSQL's, after the event is in the inbox
    assert post_event(client, succeeded).status_code == 503
    assert summary(store(app).get_payment(payment_id)) == [("Authorization", "Initial", pi, 3000)]
    assert rows(app, StripeEventRow) == 0 and store(app).find_order_by_cart(cart_id) is None

    monkeypatch.undo()
    assert post_event(client, succeeded).status_code == 200
    assert store(app).find_order_by_cart(cart_id) is not None
    assert rows(app, TransactionRow) == 2


def test_stripe_unreachable_during_a_needed_look_up_is_5xx_then_retried(app, client, stripe_mock) -> None:
    _, payment_id, pi = stored_payment(app)
    refunded = event("charge.refunded", charge(pi))
    stripe_mock.add(responses.GET, f"{STRIPE_API}/v1/refunds", body=requests.ConnectionError("down"))
    assert post_event(client, refunded).status_code == 502
    assert rows(app, StripeEventRow) == 0
    stripe_mock.replace(responses.GET, f"{STRIPE_API}/v1/refunds", json={
        "object": "list", "data": [refund("re_1", pi, 100)], "has_more": False, "url": "/v1/refunds"})
    assert post_event(client, refunded).status_code == 200
    assert rows(app, StripeEventRow) == 1


@pytest.mark.parametrize(
    "obj",
    [{"id": "pi_1", "object": "payment_intent", "amount": "lots", "currency": "eur", "metadata": {}},
     {"object": "refund"}],
)
def test_malformed_objects_are_acknowledged_and_logged(app, client, caplog, obj) -> None:
    _, payment_id, pi = stored_payment(app)
    obj = {**obj, "metadata": {"ct_payment_id": payment_id}, "payment_intent": pi}
    with caplog.at_level("WARNING", logger="flask_psp_connector.webhooks.events"):
        event_type = "charge.refund.updated" if obj["object"] == "refund" else "payment_intent.succeeded"
        assert post_event(client, event(event_type, obj)).status_code == 200
    assert "malformed" in caplog.text
    assert summary(store(app).get_payment(payment_id)) == [("Authorization", "Initial", pi, 3000)]


def test_an_event_that_waited_for_the_payment_lock_sees_what_the_holder_wrote(platform) -> None:
    """succeeded holds the payment's lock while a refund waits for it: the refund, once it
    runs, must see the order the first event created and make it Refunded."""
    _, payment_id, pi = stored_payment(platform)
    processor = EventProcessor(platform, None)
    holding, release = threading.Event(), threading.Event()
    original = hot_path.applied

    def slow_apply(payment, changes):
        if changes.create_order:
            holding.set()
            release.wait(10)
        return original(payment, changes)

    succeeded = event("payment_intent.succeeded", intent(pi, payment_id, status="succeeded", received=3000))
    refunded = event("charge.refunded", charge(pi, refunds=[refund("re_full", pi, 3000)]))
    hot_path.applied = slow_apply
    try:
        first = threading.Thread(target=processor.handle, args=(succeeded,))
        first.start()
        assert holding.wait(10)
        second = threading.Thread(target=processor.handle, args=(refunded,))
        second.start()
        time.sleep(0.3)  # the refund is now waiting for the payment's row lock
        release.set()
        first.join(10)
        second.join(10)
    finally:
        hot_path.applied = original
    payment = platform.get_payment(payment_id)
    assert ("Refund", "Success", "re_full", 3000) in summary(payment)
    assert platform.find_order_by_cart(payment.cart_id).payment_state == "Refunded"


def test_a_duplicate_delivery_never_reaches_a_gateways_claim(platform) -> None:
    """A gateway's claim acts outside the inbox's transaction: the inbox answers a
    duplicate before the claim is asked; a replay asks it again (claims are idempotent)."""
    claimed: list[str] = []

    def claim(event_body: dict) -> str | None:
        claimed.append(event_body["id"])
        return "settled by the gateway"

    processor = EventProcessor(platform, None, [claim])
    delivery = event("payment_intent.succeeded", intent("pi_gateway1", None, status="succeeded"))
    first, second = processor.handle(delivery), processor.handle(delivery)
    assert (first.detail, second.status, claimed) == ("settled by the gateway", EventStatus.DUPLICATE, [delivery["id"]])
    processor.handle(delivery, replay=True)
    assert claimed == [delivery["id"]] * 2
