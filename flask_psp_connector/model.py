"""The domain: carts, payments, transactions, orders and checkout sessions.

Plain, immutable values in commercetools' vocabulary. Platform adapters build them from
their storage; use cases read them and ask the platform for changes. The transaction
matching rules live here because every platform must apply them the same way.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from .money import Money


class TransactionType(enum.StrEnum):
    """What a payment transaction records."""

    AUTHORIZATION = "Authorization"
    CANCEL_AUTHORIZATION = "CancelAuthorization"
    CHARGE = "Charge"
    REFUND = "Refund"
    CHARGEBACK = "Chargeback"


class TransactionState(enum.StrEnum):
    """Where a payment transaction stands."""

    INITIAL = "Initial"
    PENDING = "Pending"
    SUCCESS = "Success"
    FAILURE = "Failure"


_S = TransactionState
#: The state changes a matched transaction may make (upstream's rules).
ALLOWED_TRANSITIONS: dict[TransactionState, frozenset[TransactionState]] = {
    _S.INITIAL: frozenset({_S.PENDING, _S.SUCCESS, _S.FAILURE}),
    _S.PENDING: frozenset({_S.SUCCESS, _S.FAILURE}),
    _S.FAILURE: frozenset({_S.SUCCESS}),
    _S.SUCCESS: frozenset({_S.FAILURE}),
}


class CartState(enum.StrEnum):
    """Whether a cart can still be paid or has become an order."""

    ACTIVE = "Active"
    ORDERED = "Ordered"


@dataclass(frozen=True, slots=True)
class Address:
    """A postal address, as commercetools names its fields."""

    first_name: str = ""
    last_name: str = ""
    street_name: str = ""
    street_number: str = ""
    additional_street_info: str = ""
    postal_code: str = ""
    city: str = ""
    state: str = ""
    country: str = ""
    phone: str = ""
    email: str = ""

    @property
    def name(self) -> str:
        """First and last name joined."""
        return f"{self.first_name} {self.last_name}".strip()

    def to_stripe(self) -> dict[str, object]:
        """The Stripe ``shipping``/``billing_details`` shape of this address."""
        return {
            "name": self.name,
            "phone": self.phone,
            "address": {
                "line1": f"{self.street_number} {self.street_name}".strip(),
                "line2": self.additional_street_info,
                "city": self.city,
                "postal_code": self.postal_code,
                "state": self.state,
                "country": self.country,
            },
        }


@dataclass(frozen=True, slots=True)
class LineItem:
    """A product in a cart or order, priced per unit in the cart's currency."""

    id: str
    sku: str
    name: str
    quantity: int
    unit_price: Money

    @property
    def total_price(self) -> Money:
        """Unit price times quantity."""
        return self.unit_price.with_amount(self.unit_price.cent_amount * self.quantity)


@dataclass(frozen=True, slots=True)
class Cart:
    """A shopping cart held server-side; the only source of the amount to charge."""

    id: str
    version: int
    currency_code: str
    line_items: tuple[LineItem, ...]
    shipping_amount: int
    tax_amount: int
    state: CartState
    customer_id: str | None = None
    customer_email: str | None = None
    shipping_address: Address | None = None
    billing_address: Address | None = None
    shipping_method_name: str | None = None

    @property
    def subtotal(self) -> Money:
        """Sum of the line items."""
        return Money.of(sum(item.total_price.cent_amount for item in self.line_items), self.currency_code)

    @property
    def total_price(self) -> Money:
        """Line items plus shipping plus tax: what the customer owes."""
        return self.subtotal.with_amount(self.subtotal.cent_amount + self.shipping_amount + self.tax_amount)


@dataclass(frozen=True, slots=True)
class TransactionDraft:
    """A transaction to record, or a state change for the one it matches."""

    type: TransactionType
    state: TransactionState
    amount: Money
    interaction_id: str


@dataclass(frozen=True, slots=True)
class Transaction:
    """A recorded money movement on a payment; ``interaction_id`` is Stripe's object id."""

    id: str
    type: TransactionType
    state: TransactionState
    amount: Money
    interaction_id: str
    timestamp: datetime


@dataclass(frozen=True, slots=True)
class Payment:
    """One attempt to pay (part of) a cart, backed by one Stripe PaymentIntent."""

    id: str
    version: int
    cart_id: str
    amount_planned: Money
    payment_interface: str
    interface_id: str | None
    method: str | None
    transactions: tuple[Transaction, ...]
    client_secret: str | None = None
    created_at: datetime | None = None
    #: The PaymentIntent's customer/setup_future_usage choice it was created with (see
    #: ``payments.create_payment``); only a request with the same one may reuse it.
    intent_variant: str = ""

    def transactions_of(
        self, type_: TransactionType, *states: TransactionState
    ) -> list[Transaction]:
        """The transactions of one type, optionally restricted to some states."""
        return [t for t in self.transactions if t.type == type_ and (not states or t.state in states)]

    def has(self, type_: TransactionType, *states: TransactionState) -> bool:
        """Whether a transaction of this type (and one of these states) exists."""
        return bool(self.transactions_of(type_, *states))

    def total(self, type_: TransactionType, *states: TransactionState) -> int:
        """Sum of the amounts of the matching transactions, in minor units."""
        return sum(t.amount.cent_amount for t in self.transactions_of(type_, *states))

    @property
    def counts_as_paid(self) -> bool:
        """Authorized or charged, and not cancelled.

        Unlike upstream, a refund does not count: refunding part of a paid cart must not
        ask the customer to pay the whole cart again.
        """
        live = (_S.SUCCESS, _S.PENDING)
        return (
            self.has(TransactionType.AUTHORIZATION, *live) or self.has(TransactionType.CHARGE, *live)
        ) and not self.has(TransactionType.CANCEL_AUTHORIZATION, *live)


@dataclass(frozen=True, slots=True)
class Order:
    """A cart that has been paid."""

    id: str
    version: int
    cart_id: str
    order_number: str
    currency_code: str
    line_items: tuple[LineItem, ...]
    total_price: Money
    shipping_amount: int
    tax_amount: int
    payment_state: str
    customer_email: str | None = None
    shipping_address: Address | None = None
    billing_address: Address | None = None
    payment_ids: tuple[str, ...] = ()
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Customer:
    """A shop customer; ``stripe_customer_id`` links the Stripe Customer holding their saved methods."""

    id: str
    email: str
    name: str = ""
    stripe_customer_id: str | None = None


@dataclass(frozen=True, slots=True)
class SavedPaymentMethod:
    """A payment method a customer chose to save, as Stripe describes it (no card data)."""

    id: str
    customer_id: str
    stripe_payment_method_id: str
    brand: str
    last4: str
    exp_month: int | None
    exp_year: int | None
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class CheckoutSession:
    """The browser's right to pay one cart: what ``X-Session-Id`` names."""

    id: str
    cart_id: str
    merchant_return_url: str | None
    allowed_payment_methods: tuple[str, ...] = field(default_factory=tuple)
    expires_at: datetime | None = None


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
    payments = list(payments)
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


@dataclass(frozen=True, slots=True)
class PaymentChanges:
    """What an event (or operation) does to one payment, decided on its current state.

    ``interface_id`` and ``method`` apply only when the payment has none; an order is
    created from the payment's cart when ``create_order`` is set, using
    ``shipping_address`` when the cart has none.
    """

    transactions: tuple[TransactionDraft, ...] = ()
    interface_id: str | None = None
    method: str | None = None
    create_order: bool = False
    shipping_address: Address | None = None


class EventStatus(enum.StrEnum):
    """What became of a Stripe event."""

    PROCESSED = "processed"
    IGNORED = "ignored"
    DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True)
class EventReceipt:
    """The inbox's answer for one Stripe event."""

    status: EventStatus
    payment_id: str | None
    detail: str = ""
    event_id: str = ""
    event_type: str = ""
    received_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AddTransaction:
    """Matching outcome: no transaction of this (type, interaction id) exists yet."""

    draft: TransactionDraft


@dataclass(frozen=True, slots=True)
class ChangeState:
    """Matching outcome: move the matched transaction to a new state."""

    transaction_id: str
    state: TransactionState


def match_transaction(
    existing: Iterable[Transaction], draft: TransactionDraft
) -> AddTransaction | ChangeState | None:
    """Decide what recording ``draft`` does to a payment holding ``existing``.

    A transaction with the same (type, interaction id) is the same transaction: its
    state changes if :data:`ALLOWED_TRANSITIONS` allows it, otherwise nothing happens.
    Any other draft is a new transaction. ``None`` means "already recorded".
    """
    for transaction in existing:
        if transaction.type == draft.type and transaction.interaction_id == draft.interaction_id:
            if draft.state in ALLOWED_TRANSITIONS[transaction.state]:
                return ChangeState(transaction.id, draft.state)
            return None
    return AddTransaction(draft)
