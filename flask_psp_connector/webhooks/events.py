"""Stripe events → payment transactions and orders, exactly once (no Flask here).

Each handler reads the event's object and returns a *plan*: a function of the payment's
current state that says what to record. The platform runs the plan under the payment's
row lock, together with the inbox row of the event id, in one transaction. So a
duplicate changes nothing, concurrent deliveries serialize, and events arriving in any
order converge on the same transactions (matching by type and Stripe object id).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from flask_psp_connector.domain.captures import capture_drafts, is_multicapture_charge, requested_multicapture
from flask_psp_connector.domain.inbox import EventReceipt, EventStatus
from flask_psp_connector.domain.model import Address, CartState
from flask_psp_connector.domain.money import stripe_amount_like
from flask_psp_connector.domain.payment import Payment, StaleReason, TransactionDraft, match_transaction, recorded
from flask_psp_connector.domain.payment import TransactionState as State
from flask_psp_connector.domain.payment import TransactionType as Type
from flask_psp_connector.domain.settle import PaymentChanges, StaleHandler, settle
from flask_psp_connector.domain.stripe_status import charge_id, refund_state
from flask_psp_connector.errors import (
    ConcurrentModification,
    InvalidOperation,
    PlatformUnavailable,
    PSPError,
    StripeAPIError,
)
from flask_psp_connector.observability import telemetry
from flask_psp_connector.options import STALE_REFUND
from flask_psp_connector.ports import CommercePlatform, PaymentRef, StripePort
from flask_psp_connector.processor import customers
from flask_psp_connector.processor.settlement import stale_handler

log = logging.getLogger("flask_psp_connector.webhooks.events")

Plan = Callable[[Payment], PaymentChanges]
Event = dict[str, Any]


def _address(details: dict[str, Any] | None) -> Address | None:
    """An address from Stripe's shipping or billing details, if it is complete enough to ship to."""
    if not details or not details.get("address"):
        return None
    address = details["address"]
    if not all(address.get(key) for key in ("line1", "city", "postal_code", "country")):
        return None
    first, _, last = (details.get("name") or "").partition(" ")
    return Address(
        first_name=first, last_name=last, street_name=address["line1"],
        additional_street_info=address.get("line2") or "", postal_code=address["postal_code"],
        city=address["city"], state=address.get("state") or "", country=address["country"],
        phone=details.get("phone") or "", email=details.get("email") or "",
    )


# -- plans per event type ---------------------------------------------------------


def _disagrees(intent: Event, payment: Payment) -> bool:
    """Whether the PaymentIntent is for another amount, currency or payment than ours (as
    upstream's confirmation checks): such a payment pays for no order."""
    planned = payment.amount_planned
    named = (intent.get("metadata") or {}).get("ct_payment_id")
    return (
        intent.get("amount") != planned.to_stripe()
        or str(intent.get("currency") or "").upper() != planned.currency_code
        or (named is not None and named != payment.id)
    )


def _intent_succeeded(intent: Event, ship_to: Callable[[], Address | None] | None,
                      on_stale: StaleHandler, captures: list[Event] | None = None) -> Plan:
    """``ship_to``: where the order ships if its cart has no address;
    ``captures``: the balance transactions of a multicapture PaymentIntent, each one Charge."""

    def plan(payment: Payment) -> PaymentChanges:
        planned, currency = payment.amount_planned, intent.get("currency")
        received = intent.get("amount_received") or intent.get("amount")
        authorization = TransactionDraft(Type.AUTHORIZATION, State.SUCCESS,
                                         stripe_amount_like(planned, intent.get("amount"), currency), intent["id"])
        if captures is None:
            charged = stripe_amount_like(planned, received, currency)
            charges = [TransactionDraft(Type.CHARGE, State.SUCCESS, charged, intent["id"])]
        else:
            charges = capture_drafts(payment, captures, intent.get("amount_received"))
        return PaymentChanges(
            transactions=(authorization, *charges),
            interface_id=intent["id"],
            create_order=True,
            ship_to=ship_to,
            on_stale=on_stale,
            stale_reason=StaleReason.INTENT_MISMATCH if _disagrees(intent, payment) else None,
        )

    return plan


def _intent_state(state: State, *, cancelled: bool = False) -> Callable[[Event], Plan]:
    def handler(intent: Event) -> Plan:
        def plan(payment: Payment) -> PaymentChanges:
            amount = stripe_amount_like(payment.amount_planned, intent.get("amount"), intent.get("currency"))
            if state == State.FAILURE and not cancelled and payment.has(Type.CHARGE, State.SUCCESS):
                # A failed attempt reported after the payment succeeded is history, not news.
                return PaymentChanges()
            drafts = [TransactionDraft(Type.AUTHORIZATION, state, amount, intent["id"])]
            if cancelled:
                drafts.append(TransactionDraft(Type.CANCEL_AUTHORIZATION, State.SUCCESS, amount, intent["id"]))
            return PaymentChanges(tuple(drafts), interface_id=intent["id"])

        return plan

    return handler


def _charge_succeeded(charge: Event, on_stale: StaleHandler) -> Plan:
    """An authorization (captured now or later): settled against the cart like a payment."""

    def plan(payment: Payment) -> PaymentChanges:
        amount = stripe_amount_like(payment.amount_planned, charge.get("amount"), charge.get("currency"))
        pi = charge.get("payment_intent") or payment.interface_id or charge["id"]
        method = (charge.get("payment_method_details") or {}).get("type")
        return PaymentChanges((TransactionDraft(Type.AUTHORIZATION, State.SUCCESS, amount, pi),), interface_id=pi,
                              method=method, create_order=True, on_stale=on_stale)

    return plan


def _captures(charge: Event, transactions: list[Event]) -> Plan:
    """Every capture of a multicapture charge so far, each under its balance transaction."""

    def plan(payment: Payment) -> PaymentChanges:
        return PaymentChanges(tuple(capture_drafts(payment, transactions, charge.get("amount_captured"))))

    return plan


def _refunds(refunds: list[Event]) -> Plan:
    def plan(payment: Payment) -> PaymentChanges:
        return PaymentChanges(tuple(
            TransactionDraft(Type.REFUND, refund_state(r.get("status")),
                             stripe_amount_like(payment.amount_planned, r.get("amount"), r.get("currency")), r["id"])
            for r in refunds
        ))

    return plan


def _dispute(dispute: Event) -> Plan:
    status = dispute.get("status")
    state = State.SUCCESS if status == "lost" else State.FAILURE if status in ("won", "warning_closed") else State.PENDING

    def plan(payment: Payment) -> PaymentChanges:
        amount = stripe_amount_like(payment.amount_planned, dispute.get("amount"), dispute.get("currency"))
        return PaymentChanges((TransactionDraft(Type.CHARGEBACK, state, amount, dispute["id"]),))

    return plan


_OUTCOMES = {EventStatus.PROCESSED: "applied", EventStatus.DUPLICATE: "duplicate", EventStatus.IGNORED: "ignored"}
#: The payment outcome an applied event reports (for metrics).
_PAYMENT_OUTCOMES = {"payment_intent.succeeded": "succeeded", "payment_intent.payment_failed": "failed",
                     "payment_intent.canceled": "canceled"}

#: Every event type the webhook handles (also what post-deploy subscribes to).
HANDLED_EVENTS = (
    "payment_intent.succeeded",
    "payment_intent.processing",
    "payment_intent.payment_failed",
    "payment_intent.canceled",
    "payment_intent.requires_action",
    "payment_intent.amount_capturable_updated",  # settles the external gateways' pending authorizations
    "charge.succeeded",
    "charge.updated",  # each capture of a multicapture charge
    "charge.refunded",
    "charge.refund.updated",
    "refund.created",
    "refund.updated",
    "refund.failed",
    "charge.dispute.created",
    "charge.dispute.updated",
    "charge.dispute.closed",
)


class EventProcessor:
    """Turns verified Stripe events into effects on the commerce platform.

    :param platform: where payments and orders live.
    :param stripe: used only when an event lacks what its effect needs.
    :param gateway_events: the external gateways' hook: it claims the events of the Stripe
        objects a gateway created (returning what it did, stored as the inbox detail) and
        returns ``None`` for the others. Its effects must be idempotent.
    :param stale_policy: ``PSP_STALE_PAYMENTS``: what to do with a payment that succeeds
        for a cart state the cart no longer has (see :mod:`.settlement`).
    """

    def __init__(
        self,
        platform: CommercePlatform,
        stripe: StripePort | None,
        gateway_events: Callable[[Event], str | None] | None = None,
        *,
        stale_policy: str = STALE_REFUND,
    ) -> None:
        self.platform = platform
        self.stripe = stripe
        self.gateway_events = gateway_events
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
        if self.gateway_events is not None:
            detail = self.gateway_events(event)
            if detail is not None:
                receipt = self.platform.process_event(event_id, event_type, None, _nothing, detail=detail, replay=replay)
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
        try:
            receipt = self.platform.process_event(
                event_id, event_type, ref if plan else None, _strict(plan or _nothing),
                detail="" if plan else "no effect for this event type", replay=replay,
            )
        except _MalformedEvent as exc:
            return self._ignore(event, f"malformed {event_type}: {exc}", replay)
        _logged(event, receipt)
        # Only a customer's PaymentIntent can have a method to save: guests cost nothing here.
        if event_type == "payment_intent.succeeded" and obj.get("customer") and receipt.status != EventStatus.IGNORED:
            self._remember_saved_method(obj)
        return receipt

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
            cart, payments = self.platform.get_cart_and_payments(payment.cart_id)
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
        if event_type == "payment_intent.succeeded":
            captures = None
            if requested_multicapture(obj) and charge_id(obj):
                captures = self._stripe().list_balance_transactions(charge_id(obj) or "")
            return _intent_succeeded(obj, self._shipping_for_order(obj), self._on_stale, captures)
        if event_type == "payment_intent.processing":
            return _intent_state(State.PENDING)(obj)
        if event_type == "payment_intent.payment_failed":
            return _intent_state(State.FAILURE)(obj)
        if event_type == "payment_intent.canceled":
            return _intent_state(State.FAILURE, cancelled=True)(obj)
        if event_type == "charge.succeeded":
            return _charge_succeeded(obj, self._on_stale)
        if event_type == "charge.updated":
            if not is_multicapture_charge(obj) or not obj.get("amount_captured"):
                return None  # other charge updates (descriptions, metadata...) change no payment
            return _captures(obj, self._stripe().list_balance_transactions(obj["id"]))
        if event_type == "charge.refunded":
            embedded = (obj.get("refunds") or {}).get("data")
            return _refunds(embedded if embedded is not None else self._stripe().list_refunds(obj["id"]))
        if event_type in ("charge.refund.updated", "refund.created", "refund.updated", "refund.failed"):
            return _refunds([obj])
        if event_type.startswith("charge.dispute."):
            return _dispute(obj)
        return None  # payment_intent.requires_action and unknown types: recorded, no effect

    def _shipping_for_order(self, intent: Event) -> Callable[[], Address | None] | None:
        """Where the order ships when the cart has no address: the PaymentIntent's
        shipping, else the charge's shipping or billing details. The charge is fetched
        from Stripe only when it is not expanded, and only once the cart is known to
        have no address (the platform asks while placing the order): no read here."""
        shipping = _address(intent.get("shipping"))
        charge = intent.get("latest_charge")
        if shipping is None and isinstance(charge, dict):
            shipping = _address(charge.get("shipping")) or _address(charge.get("billing_details"))
        if shipping is not None or not charge_id(intent) or isinstance(charge, dict):
            return lambda: shipping
        found: list[Address | None] = []

        def ship_to() -> Address | None:
            if not found:  # a settlement retried after a lost race asks Stripe once
                charge = self._stripe().retrieve_charge(charge_id(intent) or "")
                found.append(_address(charge.get("shipping")) or _address(charge.get("billing_details")))
            return found[0]

        return ship_to

    def _stripe(self) -> StripePort:
        if self.stripe is None:
            raise PSPError("Stripe is not configured (STRIPE_SECRET_KEY).", status=503, code="ServiceUnavailable")
        return self.stripe


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
    given = obj.get("metadata")
    metadata = given if isinstance(given, dict) else {}
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
