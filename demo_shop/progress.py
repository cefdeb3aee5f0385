"""How far a cart is on its way to a paid order, in the words the shop shows.

The connector's webhook turns a paid cart into an order; :func:`settle` does the same,
through the connector's own settlement, so a shop without webhooks still works. A
payment made for a state the cart no longer has places no order: the buyer and the
merchant are told what became of it (:func:`stale_notice`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from demo_shop.connector import psp
from demo_shop.money import format_money
from flask_psp_connector.domain.model import Cart, Order
from flask_psp_connector.domain.payment import Payment, StaleReason, TransactionState, TransactionType
from flask_psp_connector.domain.settle import settle as settlement_of

T, S = TransactionType, TransactionState

#: Customer-facing payment states; the keys are what the status endpoint reports.
PAYMENT_STATES = {
    "Pending": "Waiting for payment confirmation",
    "Processing": "Payment processing",
    "Authorized": "Payment authorized",
    "Paid": "Paid",
    "PartiallyRefunded": "Partially refunded",
    "Refunded": "Refunded",
    "Failed": "Payment failed",
    "CartChanged": "Not used: your cart changed while you were paying",
}
_FINAL = frozenset({"Authorized", "Paid", "PartiallyRefunded", "Refunded", "Failed", "CartChanged"})


@dataclass(frozen=True, slots=True)
class Progress:
    """A cart, its payments and its order (once there is one)."""

    cart: Cart
    payments: list[Payment]
    order: Order | None

    @property
    def live_payments(self) -> list[Payment]:
        """The payments that may pay for the cart (the stale ones never will)."""
        return [p for p in self.payments if p.stale_reason is None]

    @property
    def stale_payments(self) -> list[Payment]:
        """Payments that were made but pay for no order (a cart changed while paying)."""
        return [p for p in self.payments if p.stale_reason is not None and _was_paid(p)]

    @property
    def payment_state(self) -> str:
        """One of :data:`PAYMENT_STATES`."""
        if self.order is not None and self.order.payment_state != "Pending":
            return self.order.payment_state
        live = self.live_payments
        if any(p.succeeded for p in live):
            return "Authorized"
        if any(p.has(T.AUTHORIZATION, S.PENDING) for p in live):
            return "Processing"
        if self.order is None and self.stale_payments:
            return "CartChanged"
        if live and all(p.has(T.AUTHORIZATION, S.FAILURE) for p in live):
            return "Failed"
        return "Pending"

    @property
    def final(self) -> bool:
        """Nothing more is expected to change without the merchant or the buyer doing something."""
        return self.payment_state in _FINAL and (
            self.order is not None or self.payment_state in ("Failed", "CartChanged"))

    @property
    def refunded(self) -> int:
        """Minor units refunded (or being refunded) on the order's own payments."""
        return sum(p.total(T.REFUND, S.SUCCESS, S.PENDING) for p in self.live_payments)

    @property
    def released(self) -> int:
        """Minor units authorized but released by partial captures (see :func:`released_remainder`)."""
        return sum(released_remainder(p) for p in self.live_payments)


def _was_paid(payment: Payment) -> bool:
    return payment.has(T.AUTHORIZATION, S.SUCCESS) or payment.has(T.CHARGE, S.SUCCESS) or payment.has(
        T.CANCEL_AUTHORIZATION, S.SUCCESS) and payment.stale_reason != StaleReason.SUPERSEDED


def settle(cart_id: str) -> Progress:
    """Read the cart's progress, settling its succeeded payments first (idempotent):
    the order is placed if one pays for the cart as it is, a stale one is undone.

    :raises ResourceNotFound: if the cart does not exist.
    """
    read = psp.platform.get_cart_and_payments(cart_id)
    cart, payments = read.cart, read.payments
    order = psp.platform.find_order_by_cart(cart_id)
    unsettled = [p for p in payments if p.succeeded and p.stale_reason is None and (
        order is None or settlement_of(p, cart, payments, ordered=True).stale is not None)]
    for payment in unsettled:
        psp.settle_payment(payment.id)
    if unsettled:
        read = psp.platform.get_cart_and_payments(cart_id)
        cart, payments = read.cart, read.payments
        order = psp.platform.find_order_by_cart(cart_id)
    return Progress(cart, payments, order)


def released_remainder(payment: Payment, *, multicapture: bool = False) -> int:
    """Minor units an authorization held but a partial capture released (Stripe releases
    the rest of a single capture); 0 with multicapture, where the rest stays capturable."""
    captured = payment.total(T.CHARGE, S.SUCCESS)
    if multicapture or not captured or not payment.has(T.AUTHORIZATION, S.SUCCESS):
        return 0
    return max(payment.amount_planned.cent_amount - captured, 0)


def stale_notice(payment: Payment) -> str:
    """What became of a stale payment, for the buyer and the merchant alike."""
    amount = format_money(payment.amount_planned)
    why = {
        StaleReason.ALREADY_PAID: "the cart had already been paid",
        StaleReason.INTENT_MISMATCH: "Stripe's amount did not match the cart",
    }.get(payment.stale_reason, "the cart changed while it was being paid")  # type: ignore[arg-type]
    refunded = payment.total(T.REFUND, S.SUCCESS, S.PENDING)
    if refunded:
        what = f"{format_money(payment.amount_planned.with_amount(refunded))} was refunded"
    elif payment.has(T.CANCEL_AUTHORIZATION, S.SUCCESS):
        what = "the authorization was released, nothing was charged"
    else:
        what = "it is waiting for the shop to refund it"
    return f"A payment of {amount} placed no order because {why}: {what}."


_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")


def words(name: str) -> str:
    """``PartiallyRefunded`` → ``Partially refunded``: a state or type name as a merchant reads it."""
    text = _CAMEL.sub(" ", str(name))
    return text[:1].upper() + text[1:].lower()


def payment_label(payment: Payment) -> str:
    """A merchant's short view of a payment (for the back office)."""
    charged = payment.total(T.CHARGE, S.SUCCESS)
    refunded = payment.total(T.REFUND, S.SUCCESS)
    if payment.stale_reason == StaleReason.SUPERSEDED and not charged:
        return "Superseded"
    if payment.stale_reason is not None:
        return "Stale, refunded" if charged and refunded >= charged else (
            "Stale, released" if payment.has(T.CANCEL_AUTHORIZATION, S.SUCCESS) else "Stale, needs refund")
    if payment.has(T.CHARGEBACK, S.SUCCESS, S.PENDING):
        return "Disputed"
    if charged and refunded >= charged:
        return "Refunded"
    if refunded:
        return "Partially refunded"
    if charged:
        return "Captured"
    if payment.has(T.CANCEL_AUTHORIZATION, S.SUCCESS):
        return "Cancelled"
    if payment.has(T.AUTHORIZATION, S.SUCCESS):
        return "Authorized"
    if payment.has(T.AUTHORIZATION, S.PENDING):
        return "Processing"
    if payment.has(T.AUTHORIZATION, S.FAILURE):
        return "Failed"
    return "Initiated"
