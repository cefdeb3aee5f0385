"""The domain: carts, payments, transactions, orders and checkout sessions.

Plain, immutable values in commercetools' vocabulary. Platform adapters build them from
their storage; use cases read them and ask the platform for changes. The transaction
matching rules live here because every platform must apply them the same way.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime

from flask_psp_connector.domain.money import Money


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
    #: The cart's country (commercetools' ``country``), used to pick a behaviour rule.
    country: str | None = None
    #: The key of the store the cart belongs to, if any.
    store_key: str | None = None
    #: Stripe Tax calculation ids (``connectorStripeTax_calculationReferences``).
    tax_calculation_references: tuple[str, ...] = ()
    #: The anonymous session the cart belongs to when it has no customer (commercetools).
    anonymous_id: str | None = None

    @property
    def subtotal(self) -> Money:
        """Sum of the line items."""
        return Money.of(sum(item.total_price.cent_amount for item in self.line_items), self.currency_code)

    @property
    def total_price(self) -> Money:
        """Line items plus shipping plus tax: what the customer owes."""
        return self.subtotal.with_amount(self.subtotal.cent_amount + self.shipping_amount + self.tax_amount)

    @property
    def fingerprint(self) -> str:
        """A digest of what an order of this cart would sell and for how much.

        A payment keeps the fingerprint of the cart it was created for, and pays for no
        other: goods, quantities, prices, shipping method, shipping, tax and total.
        Addresses and the email are left out on purpose, so correcting them while paying
        (or the order taking the wallet's address) neither changes what is sold nor
        invalidates the payment; line item ids are left out because they are storage
        details that a re-saved cart may renew.
        """
        content = {
            "currency": self.currency_code,
            "items": [[i.sku, i.name, i.quantity, i.unit_price.cent_amount] for i in self.line_items],
            "shippingMethod": self.shipping_method_name or "",
            "shipping": self.shipping_amount,
            "tax": self.tax_amount,
            "total": self.total_price.cent_amount,
        }
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:32]


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


class StaleReason(enum.StrEnum):
    """Why a payment pays for no order of its cart (it is then cancelled, refunded or flagged)."""

    #: The cart changed after the payment was created: it paid for goods or a total the cart no longer has.
    CART_CHANGED = "cart_changed"
    #: The cart was already paid (and ordered) by another payment.
    ALREADY_PAID = "already_paid"
    #: A newer payment replaced it for a changed cart before anyone paid it.
    SUPERSEDED = "superseded"
    #: The PaymentIntent disagrees with the payment (amount, currency or our payment id).
    INTENT_MISMATCH = "intent_mismatch"


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
    #: :attr:`Cart.fingerprint` of the cart state this payment was created for ("" when
    #: recorded before fingerprints were kept: then only its amount can be checked).
    cart_fingerprint: str = ""
    #: The cart's version when this payment was created (0 when unknown).
    cart_version: int = 0
    #: Set once this payment was found to pay for no order of its cart.
    stale_reason: StaleReason | None = None

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

    @property
    def succeeded(self) -> bool:
        """Authorized or charged for good (not merely pending), and not cancelled."""
        return (
            self.has(TransactionType.AUTHORIZATION, _S.SUCCESS) or self.has(TransactionType.CHARGE, _S.SUCCESS)
        ) and not self.has(TransactionType.CANCEL_AUTHORIZATION, _S.SUCCESS, _S.PENDING)

    def pays_for(self, cart: Cart) -> bool:
        """Whether this payment was made for the cart as it is now (never once it is stale)."""
        if self.stale_reason is not None or self.amount_planned.currency_code != cart.currency_code:
            return False
        return not self.cart_fingerprint or self.cart_fingerprint == cart.fingerprint


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
class EventFailure:
    """A Stripe event whose processing failed, as stored for operators and replays.

    ``resolved`` once the event made it into the inbox (Stripe's retry or a replay).
    """

    event_id: str
    event_type: str
    error: str
    attempts: int
    first_seen: datetime | None
    last_seen: datetime | None
    payload: str
    resolved: bool = False


@dataclass(frozen=True, slots=True)
class AddTransaction:
    """Matching outcome: no transaction of this (type, interaction id) exists yet."""

    draft: TransactionDraft


@dataclass(frozen=True, slots=True)
class ChangeState:
    """Matching outcome: move the matched transaction to a new state."""

    transaction_id: str
    state: TransactionState


def recorded(payment: Payment, drafts: Iterable[TransactionDraft], now: datetime) -> Payment:
    """``payment`` as it would be with ``drafts`` recorded by :func:`match_transaction` (nothing is stored)."""
    current = list(payment.transactions)
    for number, draft in enumerate(drafts):
        change = match_transaction(current, draft)
        if isinstance(change, AddTransaction):
            current.append(Transaction(f"new:{number}", draft.type, draft.state, draft.amount, draft.interaction_id, now))
        elif change is not None:
            current = [replace(t, state=change.state) if t.id == change.transaction_id else t for t in current]
    return replace(payment, transactions=tuple(current))


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
