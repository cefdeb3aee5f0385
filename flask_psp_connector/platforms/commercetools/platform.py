"""commercetools as the commerce platform: carts, payments, orders and sessions over HTTP.

Selected with ``PSP_PLATFORM=commercetools`` (or automatically when ``CTP_CLIENT_ID`` and
``CTP_API_URL`` are set); the processor routes and webhooks behave as with the embedded
store. This module is the port; the rooms beside it each hold one concern:
:mod:`.client` (HTTP, OAuth2, errors), :mod:`.mapping` (JSON ↔ domain),
:mod:`.resources` (reads), :mod:`.payments` (payment writes and settlement),
:mod:`.orders`, :mod:`.customers`, :mod:`.methods` (saved payment methods),
:mod:`.inbox` (processed and failed Stripe events) and :mod:`.custom_types`.

Identity. A payment we create carries our payment id (derived from the cart's state by
the checkout use case, and written to the PaymentIntent's ``ct_payment_id`` before the
payment exists) as its commercetools ``key``; a payment created elsewhere is known by
its commercetools id. Either names it everywhere (``/confirmPayments/:id``,
``/operations/payment-intents/:id``, Stripe metadata). Its cart is the cart whose
``paymentInfo`` references it.

What holds without a shared database transaction:

* Every write names the resource version it was decided on. A 409 re-reads the
  resource, decides again on what is now stored and retries, a bounded number of times.
* Transaction writes follow :func:`~flask_psp_connector.domain.payment.match_transaction`: a
  (type, interaction id) pair already recorded changes state only along an allowed
  transition, so writing the same effect twice is a no-op.
* Stripe event ids are kept in an inbox of custom objects (container
  ``psp-stripe-events``). An event already there changes nothing. The id is recorded
  *after* the event's effects, so a crash in between means Stripe's retry applies them
  again, which the matching rule makes harmless: effects are at least once, their
  result exactly once. Concurrent deliveries of one event both pass the inbox check,
  then serialize on the payment's version; the second finds nothing left to change.
* A cart becomes at most one order: an order is looked up by cart before it is created,
  the creation names the cart's version, and commercetools refuses to order a cart
  twice; when it does, the existing order is returned.
* Creating a payment is idempotent by its key; a payment left unattached by a crash
  between its creation and ``addPayment`` is attached by the retry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from flask_psp_connector.domain.inbox import EventFailure, EventReceipt, EventStatus
from flask_psp_connector.domain.model import (
    Cart,
    CheckoutSession,
    Customer,
    Order,
    SavedPaymentMethod,
)
from flask_psp_connector.domain.payment import Payment, TransactionDraft
from flask_psp_connector.domain.settle import PaymentChanges
from flask_psp_connector.errors import ConcurrentModification, ResourceNotFound
from flask_psp_connector.platforms.commercetools import custom_types
from flask_psp_connector.platforms.commercetools.client import CommercetoolsAPIError, CommercetoolsClient
from flask_psp_connector.platforms.commercetools.customers import CustomerStore
from flask_psp_connector.platforms.commercetools.inbox import EventInbox
from flask_psp_connector.platforms.commercetools.mapping import cart_from_json, parsed, payments_of, session_from_json
from flask_psp_connector.platforms.commercetools.methods import PaymentMethodStore, label
from flask_psp_connector.platforms.commercetools.orders import OrderSync
from flask_psp_connector.platforms.commercetools.payments import PaymentWriter
from flask_psp_connector.platforms.commercetools.resources import cart_json
from flask_psp_connector.ports import CartRead, Checkout, PaymentDraft, PaymentRef
from flask_psp_connector.retry import retrying

T = TypeVar("T")


class CommercetoolsPlatform:
    """The commercetools project behind ``client`` as the connector's commerce platform.

    :param write_attempts: how often a write that met a 409 is decided again and retried.
    :param retry_backoff: seconds of the first pause between two attempts (doubling).
    :param payment_interface: ``PAYMENT_INTERFACE``, also the interface of the saved
        payment methods (Payment Methods API) that are ours.
    """

    def __init__(self, client: CommercetoolsClient, *, write_attempts: int = 5, retry_backoff: float = 0.05,
                 payment_interface: str = "checkout-stripe") -> None:
        self.client = client
        self.write_attempts = write_attempts
        self.retry_backoff = retry_backoff
        self.payment_methods = PaymentMethodStore(client, payment_interface)
        self.orders = OrderSync(client, self._retrying)
        self.payments = PaymentWriter(client, self._retrying, self.orders)
        self.customers = CustomerStore(client, self._retrying)
        self.inbox = EventInbox(client, self._retrying)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> CommercetoolsPlatform:
        """Build the platform from the ``CTP_*`` settings."""
        return cls(CommercetoolsClient(
            api_url=settings["CTP_API_URL"],
            auth_url=settings["CTP_AUTH_URL"],
            session_url=settings["CTP_SESSION_URL"],
            project_key=settings["CTP_PROJECT_KEY"],
            client_id=settings["CTP_CLIENT_ID"],
            client_secret=settings["CTP_CLIENT_SECRET"],
            scope=settings["CTP_SCOPE"],
        ), payment_interface=settings["PAYMENT_INTERFACE"])

    def _retrying(self, attempt: Callable[[], T]) -> T:
        """Run ``attempt`` again (it re-reads what it decides on) after each lost race."""
        return retrying(attempt, retry_on=(ConcurrentModification,), attempts=self.write_attempts,
                        backoff=self.retry_backoff)

    def check_health(self) -> None:
        """Raise if the project cannot be read with the API client."""
        self.client.get("/payments", limit=1)

    # -- sessions and carts --------------------------------------------------------

    def get_session(self, session_id: str) -> CheckoutSession | None:
        """The session if the session service knows it as ACTIVE with an active cart.

        :raises PlatformUnavailable: when the session service cannot be reached, so a
            checkout route answers 503 instead of calling a live session inactive.
        """
        try:
            data = self.client.session(session_id)
        except ResourceNotFound:
            return None
        except CommercetoolsAPIError as exc:
            if exc.status >= 500:
                raise
            return None
        return session_from_json(session_id, data)

    def get_checkout(self, session_id: str) -> Checkout | None:
        """The session (see :meth:`get_session`), then its cart with its payments."""
        session = self.get_session(session_id)
        if session is None:
            return None
        read = self.get_cart_and_payments(session.cart_id)
        return Checkout(session, read.cart, tuple(read.payments))

    def get_cart(self, cart_id: str) -> Cart:
        """Return the cart or raise :class:`ResourceNotFound`."""
        return parsed(cart_from_json, cart_json(self.client, cart_id))

    def get_cart_and_payments(self, cart_id: str) -> CartRead:
        """The cart and its payments (oldest first), in one read (kept as its ``source``)."""
        data = cart_json(self.client, cart_id, expand=True)
        return CartRead(parsed(cart_from_json, data), parsed(payments_of, data), data)

    def payments_of_cart(self, cart_id: str) -> list[Payment]:
        """Return the payments attached to the cart, oldest first."""
        return self.get_cart_and_payments(cart_id).payments

    # -- payments ------------------------------------------------------------------

    def get_payment(self, payment_id: str) -> Payment:
        """Return the payment or raise :class:`ResourceNotFound`."""
        found = self.payments.find(PaymentRef(payment_id, None))
        if found is None:
            raise ResourceNotFound(f"Payment {payment_id} not found.")
        return found.payment

    def resolve_payment_id(self, ref: PaymentRef) -> str | None:
        """Our payment's id, by its id if it exists, else by its PaymentIntent id."""
        return self.payments.resolve_id(ref)

    def create_payment(self, draft: PaymentDraft) -> Payment:
        """Create the payment (keyed by ``draft.id``) and add it to its cart; an existing key is reused."""
        return self.payments.create(draft)

    def apply_transactions(
        self,
        payment_id: str,
        drafts: Iterable[TransactionDraft],
        *,
        interface_id: str | None = None,
        method: str | None = None,
    ) -> Payment:
        """Record ``drafts`` with the matching rules of :func:`~flask_psp_connector.domain.payment.match_transaction`."""
        return self.apply_changes(payment_id, PaymentChanges(tuple(drafts), interface_id, method))

    def apply_changes(self, payment_id: str, changes: PaymentChanges, *, cart_id: str | None = None,
                      read: CartRead | None = None) -> Payment:
        """Record ``changes`` on the payment; with ``create_order`` settle it against its cart.

        ``cart_id``: the cart to look for the payment in first (one read for both);
        ``read``: that cart as the caller read it, written on without reading it again.
        """
        return self.apply_plan(payment_id, lambda _: changes, cart_id=cart_id, read=read)

    def apply_plan(self, payment_id: str, plan: Callable[[Payment], PaymentChanges], *,
                   cart_id: str | None = None, read: CartRead | None = None) -> Payment:
        """:meth:`apply_changes` with the changes ``plan`` decides from the payment as read
        (decided again on a fresh read after a lost race)."""
        found = None
        if read is not None and isinstance(read.source, dict):
            found = self.payments.found_in(read.source, payment_id)
        if found is None:
            found = self.payments.find(PaymentRef(payment_id, None, cart_id))
        if found is None:
            raise ResourceNotFound(f"Payment {payment_id} not found.")
        return self.payments.change(found, plan)

    # -- Stripe events -------------------------------------------------------------

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
        """Apply ``plan`` to the event's payment, then record the event id in the inbox
        (``settles`` changes nothing here: the cart is read when the plan asks for it).

        See the module docstring for what holds when this is interrupted or concurrent.
        """
        if not replay:
            recorded = self.inbox.entry(event_id)
            if recorded is not None:
                return EventReceipt(EventStatus.DUPLICATE, recorded.payment_id, recorded.detail)
        found = None if payment is None else self.payments.find(payment)
        payment_id = None if found is None else found.payment.id
        status, note = EventStatus.PROCESSED, detail
        if found is None:
            status = EventStatus.IGNORED
            note = detail if payment is None else "belongs to no payment of ours"
        if found is not None:
            self.payments.change(found, plan)
        self.inbox.record(event_id, event_type, status, payment_id, note[:512], replay=replay)
        return EventReceipt(status, payment_id, note[:512])

    def recent_events(self, limit: int = 50) -> list[EventReceipt]:
        """The newest inbox entries (for ``flask psp events list``)."""
        return self.inbox.recent(limit)

    def event_receipt(self, event_id: str) -> EventReceipt | None:
        """The inbox entry of the event, if it was processed (or ignored) already."""
        return self.inbox.entry(event_id)

    def record_event_failure(self, event_id: str, event_type: str, error: str, payload: str) -> None:
        """Keep a failed event, or count another failed attempt of it (a lost race is retried)."""
        self.inbox.record_failure(event_id, event_type, error, payload)

    def event_failures(self, limit: int = 50) -> list[EventFailure]:
        """The most recently failed events, newest first; ``resolved`` once in the inbox."""
        return self.inbox.failures(limit)

    def stored_event(self, event_id: str) -> str | None:
        """The payload kept for a failed event, if any."""
        return self.inbox.stored_event(event_id)

    # -- orders --------------------------------------------------------------------

    def create_order(self, cart_id: str) -> Order:
        """Turn the cart into an order exactly once; later calls return that order."""
        return self.orders.for_cart(cart_id, None)

    def find_order_by_cart(self, cart_id: str) -> Order | None:
        """Return the order the cart became, if any."""
        return self.orders.find(cart_id)

    # -- customers -----------------------------------------------------------------

    def create_customer(self, email: str, name: str = "") -> Customer:
        """Create a customer whose sign-in the shop handles (``authenticationMode`` ExternalAuth).

        :raises InvalidOperation: when the email is empty or already taken.
        """
        return self.customers.create(email, name)

    def get_customer(self, customer_id: str) -> Customer | None:
        """Return the customer, or ``None`` when the project has no such customer."""
        return self.customers.get(customer_id)

    def set_stripe_customer_id(self, customer_id: str, stripe_customer_id: str) -> Customer:
        """Store the Stripe customer id in upstream's custom field of the customer."""
        return self.customers.set_stripe_customer_id(customer_id, stripe_customer_id)

    def saved_payment_methods(self, customer_id: str) -> list[SavedPaymentMethod]:
        """The customer's saved methods: their active Payment Methods of ``PAYMENT_INTERFACE``, oldest first."""
        return self.payment_methods.list(customer_id)

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
        """Create the customer's Payment Method for this token, or return the one they have (idempotent).

        :raises ResourceNotFound: when there is no such customer.
        """
        if self.customers.json(customer_id) is None:
            raise ResourceNotFound(f"Customer {customer_id} not found.")
        return self.payment_methods.record(customer_id, stripe_payment_method_id, method,
                                           label(brand, last4, exp_month, exp_year))

    def remove_saved_payment_method(self, customer_id: str, saved_id: str) -> SavedPaymentMethod | None:
        """Delete one of this customer's Payment Methods; another customer's is never touched."""
        return self.payment_methods.remove(customer_id, saved_id)

    # -- deploy --------------------------------------------------------------------

    def install_custom_types(self) -> list[str]:
        """Create the connector's custom types, or add the fields they lack (idempotent)."""
        return custom_types.install_custom_types(self.client)

    def remove_custom_types(self) -> list[str]:
        """Delete the connector's custom types; a type still in use is kept (idempotent)."""
        return custom_types.remove_custom_types(self.client)
