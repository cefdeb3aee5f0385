"""How far a cart is on its way to a paid order, in the words the shop shows.

The connector's webhook turns a paid cart into an order; :func:`settle` does the same,
exactly once per cart by the store's design, so a shop without webhooks still works.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_psp_connector.model import Cart, Order, Payment, TransactionState, TransactionType

from .cart import psp

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
}
_FINAL = frozenset({"Authorized", "Paid", "PartiallyRefunded", "Refunded", "Failed"})


@dataclass(frozen=True, slots=True)
class Progress:
    """A cart, its payments and its order (once there is one)."""

    cart: Cart
    payments: list[Payment]
    order: Order | None

    @property
    def payment_state(self) -> str:
        """One of :data:`PAYMENT_STATES`."""
        if self.order is not None and self.order.payment_state != "Pending":
            return self.order.payment_state
        if any(_authorized(p) for p in self.payments):
            return "Authorized"
        if any(p.has(T.AUTHORIZATION, S.PENDING) for p in self.payments):
            return "Processing"
        if self.payments and all(p.has(T.AUTHORIZATION, S.FAILURE) for p in self.payments):
            return "Failed"
        return "Pending"

    @property
    def final(self) -> bool:
        """Nothing more is expected to change without the merchant doing something."""
        return self.payment_state in _FINAL and (self.order is not None or self.payment_state == "Failed")


def _authorized(payment: Payment) -> bool:
    return (payment.has(T.AUTHORIZATION, S.SUCCESS) or payment.has(T.CHARGE, S.SUCCESS)) and not payment.has(
        T.CANCEL_AUTHORIZATION, S.SUCCESS
    )


def settle(cart_id: str) -> Progress:
    """Read the cart's progress, placing its order first if it is paid and has none.

    :raises ResourceNotFound: if the cart does not exist.
    """
    cart, payments = psp.platform.get_cart_and_payments(cart_id)
    order = psp.platform.find_order_by_cart(cart_id)
    if order is None and any(_authorized(p) for p in payments):
        order = psp.platform.create_order(cart_id)
        cart, payments = psp.platform.get_cart_and_payments(cart_id)
    return Progress(cart, payments, order)


def payment_label(payment: Payment) -> str:
    """A merchant's one-word view of a payment (for the back office)."""
    charged = payment.total(T.CHARGE, S.SUCCESS)
    refunded = payment.total(T.REFUND, S.SUCCESS)
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
