"""What each Stripe event records on a payment: its *plan* (no Flask here).

A plan is a function of the payment's current state that says what to record; the
platform runs it under the payment's row lock (see :mod:`.events`). Plans match
transactions by type and Stripe object id, so events arriving in any order, or twice,
converge on the same transactions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask_psp_connector.domain.captures import capture_drafts
from flask_psp_connector.domain.model import Address
from flask_psp_connector.domain.money import stripe_amount_like
from flask_psp_connector.domain.payment import Payment, StaleReason, TransactionDraft
from flask_psp_connector.domain.payment import TransactionState as State
from flask_psp_connector.domain.payment import TransactionType as Type
from flask_psp_connector.domain.settle import PaymentChanges, StaleHandler
from flask_psp_connector.domain.stripe_status import refund_state

Plan = Callable[[Payment], PaymentChanges]
Event = dict[str, Any]


def address(details: dict[str, Any] | None) -> Address | None:
    """An address from Stripe's shipping or billing details, if it is complete enough to ship to."""
    if not details or not details.get("address"):
        return None
    lines = details["address"]
    if not all(lines.get(key) for key in ("line1", "city", "postal_code", "country")):
        return None
    first, _, last = (details.get("name") or "").partition(" ")
    return Address(
        first_name=first, last_name=last, street_name=lines["line1"],
        additional_street_info=lines.get("line2") or "", postal_code=lines["postal_code"],
        city=lines["city"], state=lines.get("state") or "", country=lines["country"],
        phone=details.get("phone") or "", email=details.get("email") or "",
    )


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


def intent_succeeded(intent: Event, ship_to: Callable[[], Address | None] | None,
                     on_stale: StaleHandler, captures: list[Event] | None = None) -> Plan:
    """A PaymentIntent paid: authorized and charged, settled against the cart.

    ``ship_to``: where the order ships if its cart has no address;
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


def intent_state(intent: Event, state: State, *, cancelled: bool = False) -> Plan:
    """The PaymentIntent's authorization in ``state`` (and released, if ``cancelled``)."""

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


def charge_succeeded(charge: Event, on_stale: StaleHandler) -> Plan:
    """An authorization (captured now or later): settled against the cart like a payment."""

    def plan(payment: Payment) -> PaymentChanges:
        amount = stripe_amount_like(payment.amount_planned, charge.get("amount"), charge.get("currency"))
        pi = charge.get("payment_intent") or payment.interface_id or charge["id"]
        method = (charge.get("payment_method_details") or {}).get("type")
        return PaymentChanges((TransactionDraft(Type.AUTHORIZATION, State.SUCCESS, amount, pi),), interface_id=pi,
                              method=method, create_order=True, on_stale=on_stale)

    return plan


def charge_captures(charge: Event, transactions: list[Event]) -> Plan:
    """Every capture of a multicapture charge so far, each under its balance transaction."""

    def plan(payment: Payment) -> PaymentChanges:
        return PaymentChanges(tuple(capture_drafts(payment, transactions, charge.get("amount_captured"))))

    return plan


def refund_records(refunds: list[Event]) -> Plan:
    """Each Refund in the state its status says."""

    def plan(payment: Payment) -> PaymentChanges:
        return PaymentChanges(tuple(
            TransactionDraft(Type.REFUND, refund_state(r.get("status")),
                             stripe_amount_like(payment.amount_planned, r.get("amount"), r.get("currency")), r["id"])
            for r in refunds
        ))

    return plan


def dispute_record(dispute: Event) -> Plan:
    """The dispute as a Chargeback: pending while open, success when lost, failure when won."""
    status = dispute.get("status")
    state = State.SUCCESS if status == "lost" else State.FAILURE if status in ("won", "warning_closed") else State.PENDING

    def plan(payment: Payment) -> PaymentChanges:
        amount = stripe_amount_like(payment.amount_planned, dispute.get("amount"), dispute.get("currency"))
        return PaymentChanges((TransactionDraft(Type.CHARGEBACK, state, amount, dispute["id"]),))

    return plan
