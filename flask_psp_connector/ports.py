"""The ports: what the use cases need from wherever carts live (:class:`CommercePlatform`),
from Stripe (:class:`StripePort`) and, for the external gateways, from where their answers
are kept (:class:`AnswerStore`); and the values that cross them.

Stripe objects cross the port as plain dicts in Stripe's own shape; amounts are in
Stripe's unit (see :func:`~flask_psp_connector.domain.money.to_stripe_amount`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from flask_psp_connector.domain.inbox import EventFailure, EventReceipt
from flask_psp_connector.domain.model import Cart, CheckoutSession, Customer, Order, SavedPaymentMethod
from flask_psp_connector.domain.money import Money
from flask_psp_connector.domain.payment import Payment, TransactionDraft
from flask_psp_connector.domain.settle import PaymentChanges


@dataclass(frozen=True, slots=True)
class CartRead:
    """A cart and its payments (oldest first), read together.

    ``source`` is the platform's own record of the read. Handed back with a write
    (:meth:`CommercePlatform.apply_changes`), it spares a platform without row locks a
    second read: every write still names the versions it was decided on, so a read
    gone stale costs a retry on a fresh read, never a wrong write.
    """

    cart: Cart
    payments: list[Payment]
    source: Any = field(default=None, repr=False, compare=False)


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
class Checkout:
    """A checkout session with its cart and the cart's payments (oldest first), read together."""

    session: CheckoutSession
    cart: Cart
    payments: tuple[Payment, ...]


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

    def get_cart_and_payments(self, cart_id: str) -> CartRead:
        """The cart and its payments (oldest first), read together."""

    def get_session(self, session_id: str) -> CheckoutSession | None:
        """Return the session if it exists and has not expired."""

    def get_checkout(self, session_id: str) -> Checkout | None:
        """The session (as :meth:`get_session`) with its cart and the cart's payments, or
        ``None``; raises :class:`~flask_psp_connector.errors.ResourceNotFound` without the cart."""

    def get_payment(self, payment_id: str) -> Payment:
        """Return the payment or raise ``ResourceNotFound``."""

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
        """Record ``drafts`` with the matching rules of :func:`~flask_psp_connector.domain.payment.match_transaction`.

        ``interface_id`` and ``method`` are set only when the payment has none yet.
        """

    def apply_changes(self, payment_id: str, changes: PaymentChanges, *, cart_id: str | None = None,
                      read: CartRead | None = None) -> Payment:
        """Record ``changes`` on the payment under its lock and, with ``changes.create_order``,
        settle it against its cart (:func:`~flask_psp_connector.domain.settle.settle`): place the
        order, or mark the payment stale and record what ``changes.on_stale`` undid.
        Settlements of one cart's payments never run side by side.

        ``cart_id``: the cart the caller read the payment with, where to look first; the
        payment's own cart is what counts. ``read``: that read (see :class:`CartRead`).
        """

    def apply_plan(self, payment_id: str, plan: Callable[[Payment], PaymentChanges], *,
                   cart_id: str | None = None, read: CartRead | None = None) -> Payment:
        """:meth:`apply_changes` with the changes ``plan`` decides from the payment as stored,
        under its lock (decided again if the write loses a race)."""

    def process_event(
        self,
        event_id: str,
        event_type: str,
        payment: PaymentRef | None,
        plan: Callable[[Payment], PaymentChanges],
        *,
        detail: str = "",
        replay: bool = False,
        settles: bool = False,
    ) -> EventReceipt:
        """Find the payment, apply ``plan(payment)`` and record the event id, atomically.

        An event id seen before changes nothing unless ``replay`` is set; an event whose
        payment is not ours (or ``None``) is recorded as ignored. ``settles``: the plan
        settles the payment against its cart (``create_order``), so the platform may read
        the cart with the payment.
        """

    def record_event_failure(self, event_id: str, event_type: str, error: str, payload: str) -> None:
        """Keep (or count again) a failed event, in a transaction of its own."""

    def event_failures(self, limit: int = 50) -> list[EventFailure]:
        """The most recently failed events, newest first, each saying whether it was resolved since."""

    def recent_events(self, limit: int = 50) -> list[EventReceipt]:
        """The most recently received events, newest first."""

    def event_receipt(self, event_id: str) -> EventReceipt | None:
        """The inbox entry of the event, if it was processed (or ignored) already."""

    def stored_event(self, event_id: str) -> str | None:
        """The payload kept for a failed event, if any."""

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


class StripePort(Protocol):
    """The Stripe calls the use cases make.

    Every call that moves money or creates an object takes an idempotency key derived
    from our own ids, so a retry never has a second effect. Failures raise
    :class:`~flask_psp_connector.errors.StripeAPIError` (``transient`` when a retry may work).
    """

    def create_payment_intent(
        self,
        *,
        amount: int,
        currency: str,
        capture_method: str,
        metadata: dict[str, str],
        idempotency_key: str,
        multicapture: bool = False,
        customer: str | None = None,
        setup_future_usage: str | None = None,
        tax_calculation: str | None = None,
    ) -> dict[str, Any]:
        """Create a PaymentIntent (hooked to the Stripe Tax calculation ``tax_calculation``, if any)."""

    def retrieve_payment_intent(self, payment_intent_id: str) -> dict[str, Any]:
        """Read a PaymentIntent as Stripe holds it now."""

    def capture_payment_intent(
        self, payment_intent_id: str, amount: int, *, final: bool, idempotency_key: str
    ) -> dict[str, Any]:
        """Capture ``amount``; ``final=False`` keeps the rest capturable (multicapture)."""

    def cancel_payment_intent(self, payment_intent_id: str, *, idempotency_key: str) -> dict[str, Any]:
        """Cancel a PaymentIntent that has not been captured."""

    def create_refund(
        self, payment_intent_id: str, amount: int, *, idempotency_key: str, metadata: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """Refund ``amount`` of a captured PaymentIntent."""

    def authorize_payment_method(
        self,
        *,
        amount: int,
        currency: str,
        payment_method: str,
        capture_method: str,
        metadata: dict[str, str],
        idempotency_key: str,
        return_url: str | None = None,
        customer: str | None = None,
    ) -> dict[str, Any]:
        """Create and confirm a PaymentIntent for ``payment_method``; a declined one is returned, not raised."""

    def update_payment_intent_metadata(
        self, payment_intent_id: str, metadata: dict[str, str], *, idempotency_key: str
    ) -> dict[str, Any]:
        """Add ``metadata`` keys to a PaymentIntent (others are kept)."""

    def update_payment_intent_amount(
        self, payment_intent_id: str, amount: int, currency: str, *, idempotency_key: str
    ) -> dict[str, Any]:
        """Change the amount of a PaymentIntent not confirmed yet."""

    def confirm_payment_intent(self, payment_intent_id: str, *, idempotency_key: str) -> dict[str, Any]:
        """Confirm a PaymentIntent that already has its payment method."""

    def create_customer(
        self, *, email: str | None, metadata: dict[str, str], idempotency_key: str, name: str | None = None
    ) -> dict[str, Any]:
        """Create a Customer."""

    def retrieve_customer(self, customer_id: str) -> dict[str, Any]:
        """Read a Customer; a deleted one comes back as ``{"id": ..., "deleted": True}``."""

    def search_customers(self, query: str, *, limit: int = 10) -> list[dict[str, Any]]:
        """Customers matching a Stripe search ``query`` (first page only)."""

    def create_ephemeral_key(self, customer_id: str) -> dict[str, Any]:
        """An ephemeral key for the Customer."""

    def create_customer_session(self, customer_id: str, features: Mapping[str, Any]) -> dict[str, Any]:
        """A CustomerSession enabling the Payment Element with ``features`` (saved methods)."""

    def retrieve_payment_method(self, payment_method_id: str) -> dict[str, Any]:
        """Read a PaymentMethod."""

    def detach_payment_method(self, payment_method_id: str) -> dict[str, Any]:
        """Detach a PaymentMethod from its Customer."""

    def attach_payment_method(self, payment_method_id: str, customer_id: str, *, idempotency_key: str) -> dict[str, Any]:
        """Attach a PaymentMethod to a Customer, for later payments."""

    def retrieve_charge(self, charge: str) -> dict[str, Any]:
        """Read a Charge."""

    def list_balance_transactions(self, source: str) -> list[dict[str, Any]]:
        """Every balance transaction of a charge (one per capture with multicapture)."""

    def list_refunds(self, charge: str) -> list[dict[str, Any]]:
        """Every refund of a charge."""

    def retrieve_event(self, event_id: str) -> dict[str, Any]:
        """Read an event again."""

    def list_payment_intents(self, *, created_since: int) -> list[dict[str, Any]]:
        """PaymentIntents created at or after a Unix time."""

    def list_refunds_since(self, created_since: int) -> list[dict[str, Any]]:
        """Refunds created at or after a Unix time."""

    def list_disputes(self, *, charge: str | None = None, created_since: int | None = None) -> list[dict[str, Any]]:
        """Disputes of a charge, or created at or after a Unix time."""

    def list_capture_transactions(self, *, created_since: int) -> list[dict[str, Any]]:
        """Balance transactions of captured money since a Unix time, each with its charge in ``source``."""

    def ping(self) -> None:
        """Make the cheapest authenticated call; raise if Stripe cannot be reached with our key."""


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer of an external gateway's route: status and JSON body.

    :param action_id: set on an asynchronous answer (202), settled later by a callback.
    """

    status: int
    body: dict[str, Any]
    action_id: str | None = None


class CallbackSettlement:
    """What :meth:`AnswerStore.settle` did."""

    ENQUEUED = "enqueued"
    ALREADY_SETTLED = "already settled"
    NOT_PENDING = "answered synchronously"
    UNKNOWN = "no answer stored yet"


class AnswerStore(Protocol):
    """Where an external gateway keeps the answer it gave to each request, under the
    request's key (also Stripe's idempotency key), and settles the asynchronous ones."""

    def answer(self, key: str) -> Answer | None:
        """The answer already given to the request ``key``, if any."""

    def answers(self, *keys: str) -> dict[str, Answer]:
        """The answers already given to any of ``keys``, in one read."""

    def answers_starting_with(self, prefix: str) -> dict[str, Answer]:
        """The answers kept for every key that starts with ``prefix``."""

    def record_answer(self, key: str, answer: Answer) -> Answer:
        """Keep ``answer`` for ``key`` unless one is already kept; return the one kept (first wins)."""

    def replace_answer(self, key: str, answer: Answer) -> None:
        """Keep ``answer`` for ``key`` in place of the one kept."""

    def settle(self, key: str, url: str, payload: str) -> str:
        """Mark the asynchronous answer of ``key`` settled and enqueue its callback to ``url``,
        atomically; a second settlement changes nothing. Returns a :class:`CallbackSettlement` value."""


#: The signals a recorded change can send (see :mod:`flask_psp_connector.signals`).
SIGNAL_NAMES = ("payment_succeeded", "payment_failed", "order_created", "refund_recorded", "dispute_opened",
                "payment_flagged")


@dataclass(frozen=True)
class Notice:
    """One signal to send, with its keyword arguments, once its change is committed."""

    signal: str
    arguments: dict[str, Any] = field(default_factory=dict)


class Notify(Protocol):
    """Sends notices once their change is committed (see :class:`flask_psp_connector.signals.Sender`)."""

    def listened(self, signal: str) -> bool:
        """Whether anyone receives ``signal``."""

    def __call__(self, notices: Iterable[Notice]) -> None:
        """Send ``notices``."""
