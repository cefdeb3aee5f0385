"""Captures as Stripe's balance transactions record them (multicapture; no Flask here).

A PaymentIntent that requested multicapture can be captured several times; each capture
is a balance transaction of its charge. Recording every capture as a Charge transaction
keyed by its balance transaction id — from our own capture call, from ``charge.updated``,
from ``payment_intent.succeeded`` or from reconciliation alike — makes each capture count
once, whichever of them arrives first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from flask_psp_connector.domain.money import from_stripe_amount
from flask_psp_connector.domain.payment import (
    Payment,
    TransactionDraft,
)
from flask_psp_connector.domain.payment import TransactionState as State
from flask_psp_connector.domain.payment import TransactionType as Type

#: Balance transaction types that move captured money in (Stripe names both).
_CAPTURE_TYPES = ("charge", "payment")


def requested_multicapture(intent: Mapping[str, Any]) -> bool:
    """Whether the PaymentIntent was created for several partial captures."""
    card = (intent.get("payment_method_options") or {}).get("card") or {}
    return intent.get("capture_method") == "manual" and card.get("request_multicapture") == "if_available"


def is_multicapture_charge(charge: Mapping[str, Any]) -> bool:
    """Whether the charge can be captured several times (multicapture requested and available).

    A charge whose multicapture is ``unavailable`` is captured once; its PaymentIntent's
    events (and our capture call) record that capture by its balance transaction.
    """
    card = (charge.get("payment_method_details") or {}).get("card") or {}
    multicapture = card.get("multicapture") if isinstance(card, dict) else None
    return isinstance(multicapture, dict) and multicapture.get("status") == "available"


def capture_drafts(
    payment: Payment, transactions: Iterable[Mapping[str, Any]], amount_captured: int | None
) -> list[TransactionDraft]:
    """One Charge/Success per capture balance transaction, with its real amount.

    A balance transaction in another currency than the payment's (the account settles in
    another one) is converted back with its exchange rate, and the last capture takes
    the rounding so that the captures add up to ``amount_captured`` exactly.
    """
    planned = payment.amount_planned
    captures = sorted((t for t in transactions if t.get("type") in _CAPTURE_TYPES),
                      key=lambda t: (t.get("created") or 0, str(t["id"])))
    amounts = []
    for transaction in captures:
        amount = int(transaction["amount"])
        if str(transaction.get("currency") or "").upper() != planned.currency_code:
            amount = round(amount / float(transaction.get("exchange_rate") or 1))
        amounts.append(amount)
    if amounts and amount_captured is not None and any(
            str(t.get("currency") or "").upper() != planned.currency_code for t in captures):
        amounts[-1] = amount_captured - sum(amounts[:-1])
    return [
        TransactionDraft(Type.CHARGE, State.SUCCESS,
                         from_stripe_amount(amount, planned.currency_code, planned.fraction_digits), str(t["id"]))
        for t, amount in zip(captures, amounts, strict=True)
    ]
