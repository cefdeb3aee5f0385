"""Settling a payment against its cart, and the order's payment state (no Flask here).

A payment pays for the cart state it was created for; :func:`settle` decides whether a
payment just recorded as succeeded places the order, waits, or is stale.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from flask_psp_connector.domain.model import Address, Cart
from flask_psp_connector.domain.payment import (
    Payment,
    StaleReason,
    TransactionDraft,
    TransactionState,
    TransactionType,
)

_S = TransactionState


class OrderPaymentState(enum.StrEnum):
    """How far an order is paid, derived from its payments' transactions."""

    PENDING = "Pending"
    PAID = "Paid"
    FAILED = "Failed"
    PARTIALLY_REFUNDED = "PartiallyRefunded"
    REFUNDED = "Refunded"


def order_payment_state(payments: Iterable[Payment]) -> OrderPaymentState:
    """The payment state of an order holding ``payments``.

    Charged money decides first (minus refunds and lost chargebacks); an order with no
    charge is Pending while an authorization lives, Failed when every one failed.
    """
    payments = [p for p in payments if p.stale_reason is None]  # they pay for no order
    charged = sum(p.total(TransactionType.CHARGE, _S.SUCCESS) for p in payments)
    returned = sum(
        p.total(TransactionType.REFUND, _S.SUCCESS) + p.total(TransactionType.CHARGEBACK, _S.SUCCESS) for p in payments
    )
    if charged:
        if returned >= charged:
            return OrderPaymentState.REFUNDED
        return OrderPaymentState.PARTIALLY_REFUNDED if returned else OrderPaymentState.PAID
    if any(p.counts_as_paid for p in payments):
        return OrderPaymentState.PENDING
    if payments and all(p.has(TransactionType.AUTHORIZATION, _S.FAILURE) for p in payments):
        return OrderPaymentState.FAILED
    return OrderPaymentState.PENDING


#: What to do with a payment found stale: the transactions that undo it (a refund, a
#: cancelled authorization), or none to leave it flagged for the merchant. It runs under
#: the payment's lock, so concurrent deliveries undo a stale payment once.
StaleHandler = Callable[["Payment", StaleReason], tuple[TransactionDraft, ...]]


@dataclass(frozen=True, slots=True)
class PaymentChanges:
    """What an event (or operation) does to one payment, decided on its current state.

    ``interface_id`` and ``method`` apply only when the payment has none. With
    ``create_order`` the payment is *settled* against its cart (see :func:`settle`):
    the order is placed (shipping to what ``ship_to`` finds when the cart has no
    address) only if the payment pays for the cart as it is now; otherwise the payment
    is marked stale and ``on_stale`` undoes it.
    ``stale_reason`` marks it stale outright.
    """

    transactions: tuple[TransactionDraft, ...] = ()
    interface_id: str | None = None
    method: str | None = None
    create_order: bool = False
    on_stale: StaleHandler | None = None
    stale_reason: StaleReason | None = None
    #: Asked only when an order is placed for a cart without an address (it may call Stripe).
    ship_to: Callable[[], Address | None] | None = None


@dataclass(frozen=True, slots=True)
class Settlement:
    """What a succeeded payment means for its cart: place the order, nothing (yet), or stale."""

    place_order: bool = False
    stale: StaleReason | None = None


def settle(payment: Payment, cart: Cart, payments: Iterable[Payment], *, ordered: bool) -> Settlement:
    """Decide what ``payment`` (just recorded as succeeded) does to ``cart``.

    The order is placed once the payments made for the cart as it is now cover its
    total exactly. A payment made for another state of the cart, or one that would pay
    the cart a second time, is stale. The caller holds the cart (or its version) so
    that two payments of one cart are settled one after the other.

    :param payments: every payment of the cart, ``payment`` included.
    :param ordered: whether the cart has become an order already.
    """
    if payment.stale_reason is not None:
        return Settlement(stale=payment.stale_reason)
    if not payment.succeeded:
        return Settlement()
    if not payment.pays_for(cart):
        return Settlement(stale=StaleReason.CART_CHANGED)
    others = sum(
        p.amount_planned.cent_amount for p in payments if p.id != payment.id and p.succeeded and p.pays_for(cart)
    )
    paid = others + payment.amount_planned.cent_amount
    total = cart.total_price.cent_amount
    if paid > total:
        return Settlement(stale=StaleReason.ALREADY_PAID)
    if not payment.cart_fingerprint and paid < total and not others:
        # Recorded before fingerprints: a lone payment for less than the cart paid for another state.
        return Settlement(stale=StaleReason.CART_CHANGED)
    return Settlement(place_order=not ordered and paid == total)
