"""The commerce-platform port: what the use cases need from wherever carts live."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from flask_psp_connector.domain.model import (
    Cart,
    CheckoutSession,
    Customer,
    EventFailure,
    EventReceipt,
    Order,
    Payment,
    PaymentChanges,
    SavedPaymentMethod,
    TransactionDraft,
)
from flask_psp_connector.domain.money import Money


@dataclass(frozen=True, slots=True)
class PaymentDraft:
    """A payment to create and attach to its cart in one step.

    ``id`` is chosen by the caller (derived from the cart state), which makes creation
    idempotent: creating an existing id returns the stored payment unchanged.
    """

    id: str
    cart_id: str
    amount_planned: Money
    payment_interface: str
    interface_id: str
    client_secret: str | None
    transactions: tuple[TransactionDraft, ...]
    intent_variant: str = ""
    #: The cart state it pays for (:attr:`Cart.fingerprint <flask_psp_connector.domain.model.Cart.fingerprint>`, version).
    cart_fingerprint: str = ""
    cart_version: int = 0
    #: Who the cart belongs to (its customer, else its anonymous session), as read with
    #: ``cart_version``: with both, the cart need not be read again to create the payment.
    customer_id: str | None = None
    anonymous_id: str | None = None


@dataclass(frozen=True, slots=True)
class PaymentRef:
    """How a Stripe object names our payment: our id (metadata) and/or its PaymentIntent id."""

    payment_id: str | None = None
    interface_id: str | None = None
    #: The cart the object says the payment belongs to (metadata): where to look first.
    cart_id: str | None = None


class CommercePlatform(Protocol):
    """Carts, payments, orders and checkout sessions, wherever they are stored.

    Every method is atomic: it either fully happens or raises and changes nothing.
    """

    def get_cart(self, cart_id: str) -> Cart:
        """Return the cart or raise :class:`~flask_psp_connector.errors.ResourceNotFound`."""

    def get_cart_and_payments(self, cart_id: str) -> tuple[Cart, list[Payment]]:
        """The cart and its payments (oldest first), read together."""

    def get_session(self, session_id: str) -> CheckoutSession | None:
        """Return the session if it exists and has not expired."""

    def get_payment(self, payment_id: str) -> Payment:
        """Return the payment or raise ``ResourceNotFound``."""

    def find_payment_by_interface_id(self, interface_id: str) -> Payment | None:
        """Return the payment backed by this PaymentIntent id, if any."""

    def resolve_payment_id(self, ref: PaymentRef) -> str | None:
        """Our payment's id, by its id if it exists, else by its PaymentIntent id."""

    def payments_of_cart(self, cart_id: str) -> list[Payment]:
        """Return the payments attached to the cart, oldest first."""

    def create_payment(self, draft: PaymentDraft) -> Payment:
        """Create the payment and attach it to its cart, or return it if it exists."""

    def apply_transactions(
        self,
        payment_id: str,
        drafts: Iterable[TransactionDraft],
        *,
        interface_id: str | None = None,
        method: str | None = None,
    ) -> Payment:
        """Record ``drafts`` with the matching rules of :func:`~flask_psp_connector.domain.model.match_transaction`.

        ``interface_id`` and ``method`` are set only when the payment has none yet.
        """

    def apply_changes(self, payment_id: str, changes: PaymentChanges, *, cart_id: str | None = None) -> Payment:
        """Record ``changes`` on the payment under its lock and, with ``changes.create_order``,
        settle it against its cart (:func:`~flask_psp_connector.domain.model.settle`): place the
        order, or mark the payment stale and record what ``changes.on_stale`` undid.
        Settlements of one cart's payments never run side by side.

        ``cart_id``: the cart the caller read the payment with, where to look first; the
        payment's own cart is what counts.
        """

    def process_event(
        self,
        event_id: str,
        event_type: str,
        payment: PaymentRef | None,
        plan: Callable[[Payment], PaymentChanges],
        *,
        detail: str = "",
        replay: bool = False,
    ) -> EventReceipt:
        """Find the payment, apply ``plan(payment)`` and record the event id, atomically.

        An event id seen before changes nothing unless ``replay`` is set; an event whose
        payment is not ours (or ``None``) is recorded as ignored.
        """

    def record_event_failure(self, event_id: str, event_type: str, error: str, payload: str) -> None:
        """Keep (or count again) a failed event, in a transaction of its own."""

    def event_failures(self, limit: int = 50) -> list[EventFailure]:
        """The most recently failed events, newest first, each saying whether it was resolved since."""

    def stored_event(self, event_id: str) -> str | None:
        """The payload kept for a failed event, if any."""

    def recent_events(self, limit: int = 50) -> list[EventReceipt]:
        """The newest events received, newest first (for ``flask psp events list``)."""

    def create_order(self, cart_id: str) -> Order:
        """Turn the cart into an order, or return the order it already became."""

    def check_health(self) -> None:
        """Raise if the store cannot be reached."""

    def create_customer(self, email: str, name: str = "") -> Customer:
        """Create a customer (their email must not be taken yet)."""

    def get_customer(self, customer_id: str) -> Customer | None:
        """Return the customer, or ``None`` when there is no such customer."""

    def set_stripe_customer_id(self, customer_id: str, stripe_customer_id: str) -> Customer:
        """Link the customer to their Stripe Customer; raise ``ResourceNotFound`` if unknown."""

    def saved_payment_methods(self, customer_id: str) -> list[SavedPaymentMethod]:
        """The customer's saved payment methods, oldest first."""

    def record_saved_payment_method(
        self,
        customer_id: str,
        stripe_payment_method_id: str,
        brand: str,
        last4: str,
        exp_month: int | None,
        exp_year: int | None,
        *,
        method: str = "",
    ) -> SavedPaymentMethod:
        """Record a saved payment method, or return the record it already has (idempotent).

        ``method`` is the Stripe PaymentMethod's type (``card``, ``sepa_debit``...).
        """

    def remove_saved_payment_method(self, customer_id: str, saved_id: str) -> SavedPaymentMethod | None:
        """Delete one of this customer's saved methods; ``None`` if they have no such record."""
