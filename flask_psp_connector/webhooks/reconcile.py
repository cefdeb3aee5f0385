"""Reconciliation: what Stripe holds now versus what our payments recorded (no Flask here).

Webhooks can be missed (an outage longer than Stripe's retries, an endpoint that was
disabled). For every PaymentIntent touched in the window — created, refunded, disputed
or captured since then — Stripe's current state is turned into synthetic events: its
status, each capture (balance transaction) of a multicapture charge, each refund and
each dispute. They go through the same plans as webhooks, so what they record carries
the same Stripe object ids: a webhook arriving later changes nothing, and neither does
a second reconciliation.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from flask_psp_connector.domain.captures import is_multicapture_charge
from flask_psp_connector.domain.stripe_status import IntentStatus, charge_id
from flask_psp_connector.ports import PaymentRef, StripePort
from flask_psp_connector.webhooks.events import Event, EventProcessor

#: The event a PaymentIntent's status implies.
_STATUS_EVENTS = {
    IntentStatus.SUCCEEDED: "payment_intent.succeeded",
    IntentStatus.PROCESSING: "payment_intent.processing",
    IntentStatus.CANCELED: "payment_intent.canceled",
    IntentStatus.REQUIRES_CAPTURE: "charge.succeeded",
}


def _synthetic(kind: str, event_type: str, obj: Event, facts: Any) -> Event:
    """An event whose id names the object and the facts it carries: the same facts, the same id."""
    digest = hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return {"id": f"reconcile_{obj['id']}_{kind}_{digest}", "type": event_type, "data": {"object": obj}}


def status_event(intent: Event) -> Event | None:
    """A synthetic event carrying what ``intent``'s current status says, or ``None``."""
    event_type = _STATUS_EVENTS.get(intent.get("status", ""))
    if event_type is None:
        return None
    obj = intent
    if event_type == "charge.succeeded":
        obj = {"id": intent["id"], "object": "charge", "payment_intent": intent["id"], "amount": intent.get("amount"),
               "currency": intent.get("currency"), "metadata": intent.get("metadata") or {}}
    return {"id": f"reconcile_{intent['id']}_{intent['status']}", "type": event_type, "data": {"object": obj}}


def charge_events(stripe: StripePort, intent: Event) -> list[Event]:
    """Synthetic events for the captures, refunds and disputes of the intent's charge."""
    found = charge_id(intent)
    if not found:
        return []
    charge = intent["latest_charge"] if isinstance(intent.get("latest_charge"), dict) else stripe.retrieve_charge(found)
    # Charges carry the PaymentIntent's metadata; the objects below are matched by the PaymentIntent id too.
    named = {"payment_intent": intent["id"], "metadata": intent.get("metadata") or {}}
    events = []
    if is_multicapture_charge(charge) and charge.get("amount_captured"):
        events.append(_synthetic("captures", "charge.updated", {**charge, **named},
                                 (charge.get("amount_captured"), charge.get("balance_transaction"))))
    refunds = stripe.list_refunds(charge["id"])
    if refunds:
        embedded = {**charge, **named, "refunds": {"object": "list", "data": refunds}}
        events.append(_synthetic("refunds", "charge.refunded", embedded,
                                 sorted((r["id"], r.get("status"), r.get("amount")) for r in refunds)))
    for dispute in stripe.list_disputes(charge=charge["id"]):  # inquiries leave `disputed` false: always ask
        obj = {**dispute, "payment_intent": intent["id"]}
        events.append(_synthetic("dispute", "charge.dispute.updated", obj, (dispute.get("status"), dispute.get("amount"))))
    return events


def touched_intents(stripe: StripePort, since: int) -> Iterator[Event]:
    """PaymentIntents created since ``since``, then the older ones refunded, disputed or captured since then."""
    seen: set[str] = set()
    for intent in stripe.list_payment_intents(created_since=since):
        seen.add(intent["id"])
        yield intent
    later: list[str] = []
    for refund in stripe.list_refunds_since(since):
        later.append(refund.get("payment_intent") or "")
    for dispute in stripe.list_disputes(created_since=since):
        later.append(dispute.get("payment_intent") or "")
    for transaction in stripe.list_capture_transactions(created_since=since):
        source = transaction.get("source")
        if isinstance(source, dict):  # the charge, expanded
            later.append(source.get("payment_intent") or "")
    for intent_id in dict.fromkeys(later):
        if isinstance(intent_id, str) and intent_id and intent_id not in seen:
            seen.add(intent_id)
            yield stripe.retrieve_payment_intent(intent_id)


@dataclass(frozen=True, slots=True)
class Change:
    """What one synthetic event would add (or, applied, added) to one payment."""

    intent_id: str
    status: str
    kind: str
    missing: list[str]

    def describe(self, applied: bool) -> str:
        """``pi_... (succeeded) refund: added Refund Success 500 (re_...)``."""
        return f"{self.intent_id} ({self.status}) {self.kind}: {'added' if applied else 'missing'} {', '.join(self.missing)}"


def reconcile(processor: EventProcessor, stripe: StripePort, since: int, *, apply: bool,
              report: Callable[[Change], None]) -> int:
    """Report (and with ``apply``, record) what our payments lack; returns how many payments change."""
    changed = 0
    for intent in touched_intents(stripe, since):
        events = [e for e in (status_event(intent),) if e is not None]
        if processor.platform.resolve_payment_id(_ref(intent)) is not None:
            events += charge_events(stripe, intent)
        touched = False
        for event in events:
            missing = processor.pending_changes(event)
            if not missing:
                continue
            touched = True
            report(Change(intent["id"], str(intent.get("status")), event["type"], missing))
            if apply:
                processor.handle(event, replay=True)
        changed += touched
    return changed


def _ref(intent: Event) -> PaymentRef:
    payment_id = (intent.get("metadata") or {}).get("ct_payment_id")
    return PaymentRef(payment_id=payment_id if isinstance(payment_id, str) else None, interface_id=intent["id"])
