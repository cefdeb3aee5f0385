"""Payments and their transactions, and the rules for recording a transaction on a payment.

The matching rules live here because every platform must apply them the same way.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from flask_psp_connector.domain.model import Cart
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
