"""The one Stripe vocabulary the use cases compare against: PaymentIntent and Refund
statuses, what they mean for our transactions, and how an object names its charge."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

from flask_psp_connector.domain.payment import TransactionState


class IntentStatus(enum.StrEnum):
    """A PaymentIntent's ``status``."""

    REQUIRES_PAYMENT_METHOD = "requires_payment_method"
    REQUIRES_CONFIRMATION = "requires_confirmation"
    REQUIRES_ACTION = "requires_action"
    PROCESSING = "processing"
    REQUIRES_CAPTURE = "requires_capture"
    CANCELED = "canceled"
    SUCCEEDED = "succeeded"


#: Paid, or being paid: authorized, charged, or settling asynchronously (``processing``).
PAID_STATUSES = frozenset({IntentStatus.SUCCEEDED, IntentStatus.REQUIRES_CAPTURE, IntentStatus.PROCESSING})
#: The money is secured: authorized (to capture) or already taken.
AUTHORIZED_STATUSES = frozenset({IntentStatus.REQUIRES_CAPTURE, IntentStatus.SUCCEEDED})
#: Nobody has confirmed the PaymentIntent yet: its amount can still change.
UNCONFIRMED_STATUSES = frozenset({
    IntentStatus.REQUIRES_PAYMENT_METHOD, IntentStatus.REQUIRES_CONFIRMATION, IntentStatus.REQUIRES_ACTION})
#: Confirmed, with the outcome still to come (the buyer authenticates, or the method settles).
AWAITING_STATUSES = frozenset({IntentStatus.REQUIRES_ACTION, IntentStatus.PROCESSING})


class RefundStatus(enum.StrEnum):
    """A Refund's ``status``."""

    PENDING = "pending"
    REQUIRES_ACTION = "requires_action"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


_REFUND_STATES: dict[str, TransactionState] = {
    RefundStatus.SUCCEEDED: TransactionState.SUCCESS,
    RefundStatus.PENDING: TransactionState.PENDING,
    RefundStatus.REQUIRES_ACTION: TransactionState.PENDING,
    RefundStatus.FAILED: TransactionState.FAILURE,
    RefundStatus.CANCELED: TransactionState.FAILURE,
}


def refund_state(status: str | None) -> TransactionState:
    """The transaction state of a Stripe Refund's ``status`` (an unknown one is still pending)."""
    return _REFUND_STATES.get(status or "", TransactionState.PENDING)


def charge_id(payment_intent: Mapping[str, Any]) -> str | None:
    """Return ``latest_charge`` as an id, whether Stripe sent an id or an expanded object."""
    charge = payment_intent.get("latest_charge")
    if isinstance(charge, Mapping):
        return charge.get("id")
    return charge if isinstance(charge, str) else None
