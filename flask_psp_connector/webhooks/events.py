"""Stripe events → payment transactions and orders, exactly once (no Flask here).

:data:`HANDLERS` maps each event type to its handler, which reads the event's object and
returns a *plan* (see :mod:`.plans`): a function of the payment's current state that says
what to record. The platform runs the plan under the payment's row lock, together with
the inbox row of the event id, in one transaction. So a duplicate changes nothing,
concurrent deliveries serialize, and events arriving in any order converge on the same
transactions (matching by type and Stripe object id). Once that transaction has
committed, and only for the delivery that changed something, the change's signals are
sent (see :mod:`flask_psp_connector.signals`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from flask_psp_connector.domain.captures import is_multicapture_charge, requested_multicapture
from flask_psp_connector.domain.inbox import EventReceipt, EventStatus
from flask_psp_connector.domain.model import Address, CartState
from flask_psp_connector.domain.payment import Payment, match_transaction, recorded
from flask_psp_connector.domain.payment import TransactionState as State
from flask_psp_connector.domain.settle import PaymentChanges, settle
from flask_psp_connector.domain.stripe_status import charge_id
from flask_psp_connector.errors import (
    ConcurrentModification,
    InvalidOperation,
    PlatformUnavailable,
    PSPError,
    StripeAPIError,
)
from flask_psp_connector.observability import telemetry
from flask_psp_connector.options import STALE_REFUND
from flask_psp_connector.ports import CommercePlatform, Notice, Notify, PaymentRef, StripePort
from flask_psp_connector.processor import customers
from flask_psp_connector.processor.settlement import stale_handler
from flask_psp_connector.webhooks import plans
from flask_psp_connector.webhooks.outcomes import Watch
from flask_psp_connector.webhooks.plans import Event as Event
from flask_psp_connector.webhooks.plans import Plan

log = logging.getLogger("flask_psp_connector.webhooks.events")

#: An external gateway's claim on an event: what it did with an event about a Stripe
#: object it created (stored as the inbox detail), ``None`` for the others. It must be
#: idempotent, and raise on a transient failure (Stripe then delivers the event again).
Claim = Callable[[Event], str | None]


_OUTCOMES = {EventStatus.PROCESSED: "applied", EventStatus.DUPLICATE: "duplicate", EventStatus.IGNORED: "ignored"}
#: The payment outcome an applied event reports (for metrics).
_PAYMENT_OUTCOMES = {"payment_intent.succeeded": "succeeded", "payment_intent.payment_failed": "failed",
                     "payment_intent.canceled": "canceled"}


class EventProcessor:
    """Turns verified Stripe events into effects on the commerce platform.

    :param platform: where payments and orders live.
    :param stripe: used only when an event lacks what its effect needs.
    :param claims: the external gateways' :data:`Claim` on events, asked in turn before
        the event is looked up as a payment's; the first that claims it answers.
    :param stale_policy: ``PSP_STALE_PAYMENTS``: what to do with a payment that succeeds
        for a cart state the cart no longer has (see :mod:`.settlement`).
    :param notify: sends the signals of what an event changed, once it is committed.
    """

    def __init__(
        self,
        platform: CommercePlatform,
        stripe: StripePort | None,
        claims: Sequence[Claim] = (),
        *,
        stale_policy: str = STALE_REFUND,
        notify: Notify | None = None,
    ) -> None:
        self.platform = platform
        self.stripe = stripe
        self.claims = tuple(claims)
        self.notify = notify
        self._on_stale = stale_handler(stripe, stale_policy)

    def handle(self, event: Event, *, replay: bool = False) -> EventReceipt:
        """Apply ``event`` once. Transient failures raise (so Stripe retries) and are kept
        with the event (see :meth:`replay`); permanent problems are recorded as ignored with
        the reason, and logged with the event id.
        """
        try:
            receipt = self._handle(event, replay)
        except Exception as exc:
            telemetry.record_event(event["type"], "failed", event.get("created"))
            self._remember_failure(event, exc)
            raise
        telemetry.record_event(event["type"], _OUTCOMES[receipt.status], event.get("created"))
        if receipt.status == EventStatus.PROCESSED and event["type"] in _PAYMENT_OUTCOMES:
            telemetry.record_payment(_PAYMENT_OUTCOMES[event["type"]])
        return receipt

    def replay(self, event_id: str) -> EventReceipt:
        """Process an event again (idempotently): the copy kept when it failed, else Stripe's."""
        stored = self.platform.stored_event(event_id)
        event = json.loads(stored) if stored else self._stripe().retrieve_event(event_id)
        return self.handle(event, replay=True)

    def _remember_failure(self, event: Event, exc: Exception) -> None:
        """Keep the failed event for operators and replays; a store that is down is only logged."""
        error = f"{type(exc).__name__}: {getattr(exc, 'message', '') or exc}"
        log.error("Stripe event %s (%s) failed: %s", event["id"], event["type"], error,
                  extra={"event_id": event["id"], "event_type": event["type"], "outcome": "failed"})
        try:
            self.platform.record_event_failure(event["id"], event["type"], error, json.dumps(event))
        except Exception as failure:  # noqa: BLE001 (the original error is what Stripe must see)
            log.error("Failed Stripe event %s could not be kept: %s", event["id"], type(failure).__name__)

    def _handle(self, event: Event, replay: bool) -> EventReceipt:
        event_id, event_type, obj = event["id"], event["type"], event["data"]["object"]
        if self.claims and not replay:
            # A gateway's claim acts outside the inbox's transaction: a duplicate must not reach it.
            seen = self.platform.event_receipt(event_id)
            if seen is not None:
                return _logged(event, replace(seen, status=EventStatus.DUPLICATE))
        for claim in self.claims:
            detail = claim(event)
            if detail is not None:
                receipt = self.platform.process_event(event_id, event_type, None, _nothing, detail=detail, replay=replay)
                if receipt.status != EventStatus.DUPLICATE:
                    self._send(lambda notify: _gateway_notices(event))
                return _logged(event, receipt)
        try:
            ref = _payment_ref(obj)
            plan = self._plan(event_type, obj, ref)
        except _DATA_ERRORS as exc:
            return self._ignore(event, f"malformed {event_type}: {type(exc).__name__}", replay)
        except StripeAPIError as exc:
            if exc.transient:
                raise
            return self._ignore(event, f"Stripe refused a look-up: {exc.code}", replay)
        watch = Watch(event_id, obj)
        try:
            receipt = self.platform.process_event(
                event_id, event_type, ref if plan else None, watch.plan(_strict(plan or _nothing)),
                detail="" if plan else "no effect for this event type", replay=replay,
                settles=plan is not None and event_type in _SETTLING,
            )
        except _MalformedEvent as exc:
            return self._ignore(event, f"malformed {event_type}: {exc}", replay)
        _logged(event, receipt)
        self._send(lambda notify: watch.notices(self.platform, notify.listened))
        # Only a customer's PaymentIntent can have a method to save: guests cost nothing here.
        if event_type == "payment_intent.succeeded" and obj.get("customer") and receipt.status != EventStatus.IGNORED:
            self._remember_saved_method(obj)
        return receipt

    def _send(self, collect: Callable[[Notify], list[Notice]]) -> None:
        """Send what a committed change means; a failure here loses a signal, never the event."""
        if self.notify is None:
            return
        try:
            notices = collect(self.notify)
            if notices:
                self.notify(notices)
        except Exception:
            log.exception("The signals of a Stripe event could not be sent")

    def _remember_saved_method(self, intent: Event) -> None:
        """Record the method the buyer chose to save (idempotent, so a duplicate delivery
        also retries it). A transient failure raises for Stripe to retry the event."""
        if self.stripe is None:
            return
        try:
            customers.record_saved_payment_method(self.platform, self.stripe, intent)
        except PSPError as exc:
            if getattr(exc, "transient", False) or isinstance(exc, (PlatformUnavailable, ConcurrentModification)):
                raise
            log.warning("Saved payment method of PaymentIntent %s not recorded: %s", intent.get("id"), exc.message)

    def pending_changes(self, event: Event) -> list[str]:
        """What applying ``event`` would still change, in words (empty when nothing)."""
        obj = event["data"]["object"]
        ref = _payment_ref(obj)
        payment_id = self.platform.resolve_payment_id(ref)
        plan = self._plan(event["type"], obj, ref)
        if payment_id is None or plan is None:
            return []
        payment = self.platform.get_payment(payment_id)
        changes = plan(payment)
        missing = [
            f"{d.type.value} {d.state.value} {d.amount.cent_amount} ({d.interaction_id})"
            for d in changes.transactions
            if match_transaction(payment.transactions, d) is not None
        ]
        if changes.create_order and payment.stale_reason is None:
            read = self.platform.get_cart_and_payments(payment.cart_id)
            cart, payments = read.cart, read.payments
            after = replace(recorded(payment, changes.transactions, datetime.now(UTC)),
                            stale_reason=changes.stale_reason)
            verdict = settle(after, cart, [after if p.id == after.id else p for p in payments],
                             ordered=cart.state == CartState.ORDERED)
            if verdict.stale is not None:
                missing.append(f"no order: it pays for no order of its cart ({verdict.stale.value})")
            elif verdict.place_order:
                missing.append("order")
        return missing

    def _ignore(self, event: Event, detail: str, replay: bool) -> EventReceipt:
        receipt = self.platform.process_event(event["id"], event["type"], None, _nothing, detail=detail, replay=replay)
        return _logged(event, receipt, logging.WARNING)

    def _plan(self, event_type: str, obj: Event, ref: PaymentRef) -> Plan | None:
        """The plan of the event's type; ``None`` for a type with no effect on payments."""
        handler = HANDLERS.get(event_type)
        return None if handler is None else handler(self, obj)

    def _intent_succeeded(self, intent: Event) -> Plan:
        captures = None
        if requested_multicapture(intent) and charge_id(intent):
            captures = self._stripe().list_balance_transactions(charge_id(intent) or "")
        return plans.intent_succeeded(intent, self._shipping_for_order(intent), self._on_stale, captures)

    def _charge_succeeded(self, charge: Event) -> Plan:
        return plans.charge_succeeded(charge, self._on_stale)

    def _charge_updated(self, charge: Event) -> Plan | None:
        if not is_multicapture_charge(charge) or not charge.get("amount_captured"):
            return None  # other charge updates (descriptions, metadata...) change no payment
        return plans.charge_captures(charge, self._stripe().list_balance_transactions(charge["id"]))

    def _charge_refunded(self, charge: Event) -> Plan:
        embedded = (charge.get("refunds") or {}).get("data")
        return plans.refund_records(embedded if embedded is not None else self._stripe().list_refunds(charge["id"]))

    def _shipping_for_order(self, intent: Event) -> Callable[[], Address | None] | None:
        """Where the order ships when the cart has no address: the PaymentIntent's
        shipping, else the charge's shipping or billing details. The charge is fetched
        from Stripe only when it is not expanded, and only once the cart is known to
        have no address (the platform asks while placing the order): no read here."""
        shipping = plans.address(intent.get("shipping"))
        charge = intent.get("latest_charge")
        if shipping is None and isinstance(charge, dict):
            shipping = plans.address(charge.get("shipping")) or plans.address(charge.get("billing_details"))
        if shipping is not None or not charge_id(intent) or isinstance(charge, dict):
            return lambda: shipping
        found: list[Address | None] = []

        def ship_to() -> Address | None:
            if not found:  # a settlement retried after a lost race asks Stripe once
                charge = self._stripe().retrieve_charge(charge_id(intent) or "")
                found.append(plans.address(charge.get("shipping")) or plans.address(charge.get("billing_details")))
            return found[0]

        return ship_to

    def _stripe(self) -> StripePort:
        if self.stripe is None:
            raise PSPError("Stripe is not configured (STRIPE_SECRET_KEY).", status=503, code="ServiceUnavailable")
        return self.stripe


#: What each handled event type records: a handler builds its plan from the event's object
#: (``None``: recorded in the inbox, no effect on payments).
Handler = Callable[[EventProcessor, Event], Plan | None]


def _no_effect(processor: EventProcessor, obj: Event) -> None:
    return None


def _refund(processor: EventProcessor, refund: Event) -> Plan:
    return plans.refund_records([refund])


def _dispute(processor: EventProcessor, dispute: Event) -> Plan:
    return plans.dispute_record(dispute)


HANDLERS: dict[str, Handler] = {
    "payment_intent.succeeded": EventProcessor._intent_succeeded,
    "payment_intent.processing": lambda processor, intent: plans.intent_state(intent, State.PENDING),
    "payment_intent.payment_failed": lambda processor, intent: plans.intent_state(intent, State.FAILURE),
    "payment_intent.canceled": lambda processor, intent: plans.intent_state(intent, State.FAILURE, cancelled=True),
    "payment_intent.requires_action": _no_effect,
    "payment_intent.amount_capturable_updated": _no_effect,  # settles the external gateways' pending authorizations
    "charge.succeeded": EventProcessor._charge_succeeded,
    "charge.updated": EventProcessor._charge_updated,  # each capture of a multicapture charge
    "charge.refunded": EventProcessor._charge_refunded,
    "charge.refund.updated": _refund,
    "refund.created": _refund,
    "refund.updated": _refund,
    "refund.failed": _refund,
    "charge.dispute.created": _dispute,
    "charge.dispute.updated": _dispute,
    "charge.dispute.closed": _dispute,
}

#: The event types whose plans settle the payment against its cart (``create_order``).
_SETTLING = frozenset({"payment_intent.succeeded", "charge.succeeded"})

#: Every event type the webhook handles (also what post-deploy subscribes to).
HANDLED_EVENTS = tuple(HANDLERS)

#: The signal an event about an external gateway's Stripe object sends, by event type.
_GATEWAY_SIGNALS = {
    "payment_intent.succeeded": "payment_succeeded",
    "payment_intent.amount_capturable_updated": "payment_succeeded",
    "payment_intent.payment_failed": "payment_failed",
    "payment_intent.canceled": "payment_failed",
    "charge.refund.updated": "refund_recorded",
    "refund.created": "refund_recorded",
    "refund.updated": "refund_recorded",
    "refund.failed": "refund_recorded",
}


def _gateway_notices(event: Event) -> list[Notice]:
    """An external gateway's object is no payment of ours: its signal carries the object alone."""
    signal = _GATEWAY_SIGNALS.get(event["type"])
    if signal is None:
        return []
    arguments: dict[str, Any] = {"payment": None, "event_id": event["id"], "stripe_object": event["data"]["object"]}
    if signal == "refund_recorded":
        arguments["transaction"] = None
    return [Notice(signal, arguments)]


def _logged(event: Event, receipt: EventReceipt, level: int = logging.INFO) -> EventReceipt:
    """One line per event: its id, type, outcome and payment (also as fields, for JSON logs)."""
    payment = f" (payment {receipt.payment_id})" if receipt.payment_id else ""
    detail = f" — {receipt.detail}" if receipt.detail else ""
    log.log(level, "Stripe event %s (%s): %s%s%s", event["id"], event["type"], receipt.status.value, payment, detail,
            extra={"event_id": event["id"], "event_type": event["type"], "payment_id": receipt.payment_id,
                   "outcome": receipt.status.value})
    return receipt


def _payment_ref(obj: Event) -> PaymentRef:
    """How the event's object names our payment: metadata id and PaymentIntent id."""
    raw = obj.get("metadata")
    metadata: dict[str, Any] = raw if isinstance(raw, dict) else {}
    candidate = metadata.get("ct_payment_id")
    intent = obj.get("id") if obj.get("object") == "payment_intent" else obj.get("payment_intent")
    if isinstance(intent, dict):
        intent = intent.get("id")
    cart = metadata.get("cart_id")
    return PaymentRef(
        payment_id=candidate if isinstance(candidate, str) and candidate else None,
        interface_id=intent if isinstance(intent, str) and intent else None,
        cart_id=cart if isinstance(cart, str) and cart else None,
    )


def _nothing(payment: Payment) -> PaymentChanges:
    return PaymentChanges()


class _MalformedEvent(Exception):
    """The event's object lacks or garbles a field its effect needs."""


#: What reading a garbled event object raises (the store's own failures are not in it).
_DATA_ERRORS = (InvalidOperation, KeyError, TypeError, ValueError, AttributeError)


def _strict(plan: Plan) -> Plan:
    """A plan whose data errors are reported as a malformed event, not a crash."""

    def checked(payment: Payment) -> PaymentChanges:
        try:
            return plan(payment)
        except _DATA_ERRORS as exc:
            raise _MalformedEvent(type(exc).__name__) from exc

    return checked
