"""commercetools as the commerce platform: carts, payments, orders and sessions over HTTP.

Selected with ``PSP_PLATFORM=commercetools`` (or automatically when ``CTP_CLIENT_ID`` and
``CTP_API_URL`` are set); the processor routes and webhooks behave as with the embedded
store. :mod:`.commercetools_client` does the HTTP, OAuth2 and error mapping; this module
maps commercetools resources to the domain and back.

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

import hashlib
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from flask_psp_connector.domain.inbox import EventFailure, EventReceipt, EventStatus
from flask_psp_connector.domain.model import (
    Address,
    Cart,
    CartState,
    CheckoutSession,
    Customer,
    LineItem,
    Order,
    SavedPaymentMethod,
)
from flask_psp_connector.domain.money import Money
from flask_psp_connector.domain.payment import (
    AddTransaction,
    ChangeState,
    Payment,
    StaleReason,
    Transaction,
    TransactionDraft,
    TransactionState,
    TransactionType,
    match_transaction,
)
from flask_psp_connector.domain.settle import OrderPaymentState, PaymentChanges, Settlement, order_payment_state, settle
from flask_psp_connector.errors import ConcurrentModification, InvalidOperation, ResourceNotFound
from flask_psp_connector.platforms.commercetools.client import (
    JSON,
    CommercetoolsAPIError,
    CommercetoolsClient,
    malformed,
    segment,
)
from flask_psp_connector.platforms.commercetools.methods import PaymentMethodStore, label
from flask_psp_connector.ports import PaymentDraft, PaymentRef
from flask_psp_connector.retry import retrying

log = logging.getLogger("flask_psp_connector.commercetools")

T = TypeVar("T")

#: The inbox of processed Stripe events (custom objects).
EVENT_CONTAINER = "psp-stripe-events"
#: Stripe events whose processing failed (custom objects), for operators and replays.
FAILURE_CONTAINER = "psp-stripe-event-failures"
#: Custom type of the payments we create: keeps the PaymentIntent's client secret, so a
#: retried ``/payments`` hands out the same PaymentIntent.
PAYMENT_TYPE_KEY = "payment-connector-stripe-payment"
CLIENT_SECRET_FIELD = "stripeConnector_clientSecret"
#: The PaymentIntent's customer/setup_future_usage choice (see ``Payment.intent_variant``).
INTENT_VARIANT_FIELD = "stripeConnector_intentVariant"
#: The cart state a payment pays for (``Payment.cart_fingerprint``, ``Payment.cart_version``).
CART_FINGERPRINT_FIELD = "stripeConnector_cartFingerprint"
CART_VERSION_FIELD = "stripeConnector_cartVersion"
#: Why a payment pays for no order of its cart (``Payment.stale_reason``).
STALE_REASON_FIELD = "stripeConnector_staleReason"
#: Custom type upstream adds to customers (their Stripe customer id).
CUSTOMER_TYPE_KEY = "payment-connector-stripe-customer-id"
STRIPE_CUSTOMER_FIELD = "stripeConnector_stripeCustomerId"
#: Upstream's cart custom field holding Stripe Tax calculation ids.
TAX_REFERENCES_FIELD = "connectorStripeTax_calculationReferences"

#: The custom types ``flask psp post-deploy`` creates and ``pre-undeploy`` removes.
CUSTOM_TYPES: tuple[JSON, ...] = (
    {
        "key": CUSTOMER_TYPE_KEY,
        "name": {"en": "Stripe customer id"},
        "resourceTypeIds": ["customer"],
        "fieldDefinitions": [
            {"name": STRIPE_CUSTOMER_FIELD, "label": {"en": "Stripe customer id"},
             "required": False, "type": {"name": "String"}, "inputHint": "SingleLine"},
        ],
    },
    {
        "key": PAYMENT_TYPE_KEY,
        "name": {"en": "Stripe payment"},
        "resourceTypeIds": ["payment"],
        "fieldDefinitions": [
            {"name": CLIENT_SECRET_FIELD, "label": {"en": "Stripe PaymentIntent client secret"},
             "required": False, "type": {"name": "String"}, "inputHint": "SingleLine"},
            {"name": INTENT_VARIANT_FIELD, "label": {"en": "Stripe PaymentIntent customer and future usage"},
             "required": False, "type": {"name": "String"}, "inputHint": "SingleLine"},
            {"name": CART_FINGERPRINT_FIELD, "label": {"en": "Cart state this payment pays for"},
             "required": False, "type": {"name": "String"}, "inputHint": "SingleLine"},
            {"name": CART_VERSION_FIELD, "label": {"en": "Cart version this payment was created for"},
             "required": False, "type": {"name": "Number"}},
            {"name": STALE_REASON_FIELD, "label": {"en": "Why this payment pays for no order"},
             "required": False, "type": {"name": "String"}, "inputHint": "SingleLine"},
        ],
    },
)

#: Domain order payment state → commercetools' OrderPaymentState (which has no refunds).
_CT_ORDER_PAYMENT_STATE = {
    OrderPaymentState.PENDING: "Pending",
    OrderPaymentState.PAID: "Paid",
    OrderPaymentState.FAILED: "Failed",
    OrderPaymentState.PARTIALLY_REFUNDED: "Paid",
    OrderPaymentState.REFUNDED: "Paid",
}
_ID = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_OBJECT_KEY = re.compile(r"^[-_~.a-zA-Z0-9]{1,256}$")
_EXPAND_PAYMENTS = "paymentInfo.payments[*]"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class _Found:
    """A payment as read, with what writing to it needs, and its cart (payments expanded,
    this one as last read or written), which a settlement decides on before reading again."""

    payment: Payment
    ct_id: str
    cart: JSON | None


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

    # -- sessions ------------------------------------------------------------------

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
        cart_id = _dig(data, "activeCart", "cartRef", "id")
        if data.get("state") != "ACTIVE" or not isinstance(cart_id, str) or not cart_id:
            return None
        metadata = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
        methods = metadata.get("allowedPaymentMethods")
        return_url = metadata.get("merchantReturnUrl")
        return CheckoutSession(
            id=session_id,
            cart_id=cart_id,
            merchant_return_url=return_url if isinstance(return_url, str) and return_url else None,
            allowed_payment_methods=tuple(m for m in methods if isinstance(m, str)) if isinstance(methods, list) else (),
        )

    # -- carts ---------------------------------------------------------------------

    def _cart_json(self, cart_id: str, *, expand: bool = False) -> JSON:
        if not _ID.match(cart_id):
            raise ResourceNotFound(f"Cart {cart_id} not found.")
        params = {"expand": _EXPAND_PAYMENTS} if expand else {}
        try:
            return self.client.get(f"/carts/{segment(cart_id)}", **params)
        except ResourceNotFound:
            raise ResourceNotFound(f"Cart {cart_id} not found.") from None

    def get_cart(self, cart_id: str) -> Cart:
        """Return the cart or raise :class:`ResourceNotFound`."""
        return _parsed(cart_from_json, self._cart_json(cart_id))

    def get_cart_and_payments(self, cart_id: str) -> tuple[Cart, list[Payment]]:
        """The cart and its payments (oldest first), in one read."""
        data = self._cart_json(cart_id, expand=True)
        return _parsed(cart_from_json, data), _parsed(_payments_of, data)

    def payments_of_cart(self, cart_id: str) -> list[Payment]:
        """Return the payments attached to the cart, oldest first."""
        return self.get_cart_and_payments(cart_id)[1]

    def _update_cart(self, cart: JSON, actions: list[JSON], **params: Any) -> JSON:
        return self.client.post(f"/carts/{segment(cart['id'])}", {"version": cart["version"], "actions": actions},
                                **params)

    def _cart_of_payment(self, ct_payment_id: str) -> JSON | None:
        answer = self.client.get(
            "/carts", where=f'paymentInfo(payments(id="{ct_payment_id}"))', limit=1, expand=_EXPAND_PAYMENTS
        )
        results = answer.get("results")
        if not isinstance(results, list):
            raise malformed()
        return results[0] if results else None

    # -- payments ------------------------------------------------------------------

    def _payment_json(self, payment_id: str) -> JSON | None:
        """Our payment by its key, else a payment by its commercetools id."""
        if not _ID.match(payment_id):
            return None
        for path in (f"/payments/key={payment_id}", f"/payments/{payment_id}"):
            try:
                return self.client.get(path)
            except ResourceNotFound:
                continue
        return None

    def _payment_json_by_interface_id(self, interface_id: str) -> JSON | None:
        answer = self.client.get("/payments", where=f"interfaceId={_quoted(interface_id)}", limit=1)
        results = answer.get("results")
        if not isinstance(results, list):
            raise malformed()
        return results[0] if results else None

    def _found(self, data: JSON | None) -> _Found | None:
        if data is None:
            return None
        ct_id = data.get("id")
        if not isinstance(ct_id, str):
            raise malformed()
        cart = self._cart_of_payment(ct_id)
        cart_id = cart.get("id", "") if cart else ""
        return _Found(_parsed(payment_from_json, data, cart_id), ct_id, cart)

    def _found_in_cart(self, cart_id: str, payment_id: str) -> _Found | None:
        """The payment (by key, else id) among the expanded payments of ``cart_id``: one read."""
        try:
            cart = self._cart_json(cart_id, expand=True)
        except ResourceNotFound:
            return None
        objects = [ref.get("obj") for ref in _dig(cart, "paymentInfo", "payments") or [] if isinstance(ref, dict)]
        for field in ("key", "id"):
            for data in objects:
                if isinstance(data, dict) and data.get(field) == payment_id and isinstance(data.get("id"), str):
                    return _Found(_parsed(payment_from_json, data, cart["id"]), data["id"], cart)
        return None

    def _find(self, ref: PaymentRef) -> _Found | None:
        if ref.cart_id and ref.payment_id:
            found = self._found_in_cart(ref.cart_id, ref.payment_id)
            if found is not None:
                return found
        data = self._payment_json(ref.payment_id) if ref.payment_id else None
        if data is None and ref.interface_id:
            data = self._payment_json_by_interface_id(ref.interface_id)
        return self._found(data)

    def get_payment(self, payment_id: str) -> Payment:
        """Return the payment or raise :class:`ResourceNotFound`."""
        found = self._find(PaymentRef(payment_id, None))
        if found is None:
            raise ResourceNotFound(f"Payment {payment_id} not found.")
        return found.payment

    def find_payment_by_interface_id(self, interface_id: str) -> Payment | None:
        """Return the payment backed by this PaymentIntent id, if any."""
        found = self._found(self._payment_json_by_interface_id(interface_id))
        return None if found is None else found.payment

    def resolve_payment_id(self, ref: PaymentRef) -> str | None:
        """Our payment's id, by its id if it exists, else by its PaymentIntent id."""
        data = self._payment_json(ref.payment_id) if ref.payment_id else None
        if data is None and ref.interface_id:
            data = self._payment_json_by_interface_id(ref.interface_id)
        if data is None:
            return None
        payment_id = data.get("key") or data.get("id")
        if not isinstance(payment_id, str):
            raise malformed()
        return payment_id

    def create_payment(self, draft: PaymentDraft) -> Payment:
        """Create the payment (keyed by ``draft.id``) and add it to its cart; an existing key is reused.

        With ``draft.cart_version`` the cart as the caller read it is enough (its version
        and owner); a cart changed since is read again by the 409 of ``addPayment``.
        """
        if draft.cart_version:
            read: JSON = {"id": draft.cart_id, "version": draft.cart_version, "customerId": draft.customer_id,
                          "anonymousId": draft.anonymous_id}
        else:
            read = self._cart_json(draft.cart_id)
        state = {"cart": read}
        data = self._create_payment(draft, state["cart"])
        ct_id = data.get("id")
        if not isinstance(ct_id, str):
            raise malformed()

        def attach() -> JSON:
            cart = state["cart"]
            if ct_id in _parsed(_payment_ids_of, cart):
                return cart
            try:
                return self._update_cart(cart, [{"action": "addPayment", "payment": {"typeId": "payment", "id": ct_id}}])
            except ConcurrentModification:
                state["cart"] = self._cart_json(draft.cart_id)
                raise

        self._retrying(attach)
        return _parsed(payment_from_json, data, draft.cart_id)

    def _create_payment(self, draft: PaymentDraft, cart: JSON) -> JSON:
        body: JSON = {
            "key": draft.id,
            "amountPlanned": money_json(draft.amount_planned),
            "interfaceId": draft.interface_id,
            "paymentMethodInfo": {"paymentInterface": draft.payment_interface},
            "transactions": [_transaction_json(t) for t in draft.transactions],
        }
        if isinstance(cart.get("customerId"), str):
            body["customer"] = {"typeId": "customer", "id": cart["customerId"]}
        elif isinstance(cart.get("anonymousId"), str):
            body["anonymousId"] = cart["anonymousId"]
        if draft.client_secret:
            fields: JSON = {CLIENT_SECRET_FIELD: draft.client_secret}
            if draft.intent_variant:
                fields[INTENT_VARIANT_FIELD] = draft.intent_variant
            if draft.cart_fingerprint:
                fields[CART_FINGERPRINT_FIELD] = draft.cart_fingerprint
                fields[CART_VERSION_FIELD] = draft.cart_version
            body["custom"] = {"type": {"typeId": "type", "key": PAYMENT_TYPE_KEY}, "fields": fields}
        try:
            return self.client.post("/payments", body)
        except CommercetoolsAPIError as exc:
            if exc.code == "DuplicateField":  # created before (a retry) or concurrently
                return self.client.get(f"/payments/key={segment(draft.id)}")
            if exc.code != "ReferencedResourceNotFound" or "custom" not in body:
                raise
        # The payment type is missing (post-deploy has not run): upstream's behaviour, a
        # new PaymentIntent for every /payments call, instead of refusing to take payments.
        log.warning("Custom type %s is missing; run `flask psp post-deploy`.", PAYMENT_TYPE_KEY)
        del body["custom"]
        return self.client.post("/payments", body)

    def _write_payment(self, found: _Found, plan: Callable[[Payment], PaymentChanges]) -> tuple[_Found, PaymentChanges]:
        """Apply ``plan`` to the stored payment; after a 409, re-read and decide again."""
        state = {"found": found}

        def attempt() -> tuple[_Found, PaymentChanges]:
            current = state["found"]
            changes = plan(current.payment)
            actions = payment_actions(current.payment, changes)
            if not actions:
                return current, changes
            try:
                data = self.client.post(f"/payments/{segment(current.ct_id)}",
                                        {"version": current.payment.version, "actions": actions})
            except ConcurrentModification:
                fresh = self.client.get(f"/payments/{segment(current.ct_id)}")
                state["found"] = replace(current, payment=_parsed(payment_from_json, fresh, current.payment.cart_id),
                                         cart=_with_payment(current.cart, fresh))
                raise
            return replace(current, payment=_parsed(payment_from_json, data, current.payment.cart_id),
                           cart=_with_payment(current.cart, data)), changes

        return self._retrying(attempt)

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

    def apply_changes(self, payment_id: str, changes: PaymentChanges, *, cart_id: str | None = None) -> Payment:
        """Record ``changes`` on the payment; with ``create_order`` settle it against its cart.

        ``cart_id``: the cart to look for the payment in first (one read for both).
        """
        found = self._find(PaymentRef(payment_id, None, cart_id))
        if found is None:
            raise ResourceNotFound(f"Payment {payment_id} not found.")
        return self._change(found, lambda payment: changes)

    def _change(self, found: _Found, plan: Callable[[Payment], PaymentChanges]) -> Payment:
        """Write what ``plan`` decides, settle the payment if it asks, keep the order in step."""
        written, changes = self._write_payment(found, plan)
        cart_id = written.payment.cart_id
        if changes.create_order and cart_id:
            return self._settle(written, changes)
        if _is_ordered(found.cart) and written.payment != found.payment:
            self._sync_order(cart_id)
        return written.payment

    def _settle(self, found: _Found, changes: PaymentChanges) -> Payment:
        """Place the order if the payment pays for its cart as it is now; else mark it stale and undo it.

        Without row locks, the order's creation names the cart version the decision was
        made on, and commercetools orders a cart once: the payment that loses that race
        decides again on what is stored then, and finds itself stale. The first decision
        is made on the cart as read when the payment was found (writing a payment leaves
        its cart's version alone, so placing the order still names the version decided
        on): an order placed on it is placed once, and an order that cannot be placed is
        decided again on a fresh read. "Nothing yet" is never concluded from that first
        read: another payment of the cart may have succeeded since.
        """
        cart_id = found.payment.cart_id
        undo: list[tuple[TransactionDraft, ...]] = []  # what undid it: Stripe is asked once per settlement
        known = [found.cart] if found.cart is not None and found.cart.get("id") == cart_id else []

        def mark_stale(reason: StaleReason) -> Callable[[Payment], PaymentChanges]:
            def plan(payment: Payment) -> PaymentChanges:
                if not undo:
                    undo.append(changes.on_stale(payment, reason) if changes.on_stale else ())
                return PaymentChanges(undo[0], stale_reason=reason)

            return plan

        def decide(cart: JSON) -> tuple[_Found, bool, Settlement]:
            current = self._found_in(cart, found)
            ordered = _is_ordered(cart)
            payments = _parsed(_payments_of, cart)
            return current, ordered, settle(current.payment, _parsed(cart_from_json, cart), payments, ordered=ordered)

        def attempt() -> Payment:
            cart = known.pop() if known else self._cart_json(cart_id, expand=True)
            current, ordered, verdict = decide(cart)
            if cart is found.cart and not ordered and not verdict.place_order and verdict.stale is None:
                cart = self._cart_json(cart_id, expand=True)
                current, ordered, verdict = decide(cart)
            payment = current.payment
            if verdict.stale is not None:
                payment = self._write_payment(current, mark_stale(verdict.stale))[0].payment
            elif verdict.place_order:
                self._place_order(cart, changes.ship_to)
                return payment
            if ordered:
                self._sync_order(cart_id)
            return payment

        return self._retrying(attempt)

    def _found_in(self, cart_json: JSON, found: _Found) -> _Found:
        """The payment as the expanded cart holds it (its freshest version)."""
        for ref in _dig(cart_json, "paymentInfo", "payments") or []:
            if ref.get("id") == found.ct_id and isinstance(ref.get("obj"), dict):
                return replace(found, payment=_parsed(payment_from_json, ref["obj"], cart_json["id"]), cart=cart_json)
        return found

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
    ) -> EventReceipt:
        """Apply ``plan`` to the event's payment, then record the event id in the inbox.

        See the module docstring for what holds when this is interrupted or concurrent.
        """
        if not replay:
            recorded = self._inbox_entry(event_id)
            if recorded is not None:
                return EventReceipt(EventStatus.DUPLICATE, recorded.payment_id, recorded.detail)
        found = None if payment is None else self._find(payment)
        payment_id = None if found is None else found.payment.id
        status, note = EventStatus.PROCESSED, detail
        if found is None:
            status = EventStatus.IGNORED
            note = detail if payment is None else "belongs to no payment of ours"
        if found is not None:
            self._change(found, plan)
        self._record_event(event_id, event_type, status, payment_id, note[:512], replay=replay)
        return EventReceipt(status, payment_id, note[:512])

    def _inbox_entry(self, event_id: str) -> EventReceipt | None:
        try:
            data = self.client.get(f"/custom-objects/{EVENT_CONTAINER}/{_object_key(event_id)}")
        except ResourceNotFound:
            return None
        return _parsed(_receipt, data)

    def _record_event(
        self, event_id: str, event_type: str, status: EventStatus, payment_id: str | None, detail: str, *, replay: bool
    ) -> None:
        body: JSON = {
            "container": EVENT_CONTAINER,
            "key": _object_key(event_id),
            "value": {"eventId": event_id, "type": event_type, "status": status.value, "paymentId": payment_id,
                      "detail": detail, "receivedAt": _now()},
        }
        if not replay:
            body["version"] = 0  # create only: a concurrent delivery may have recorded it first
        try:
            self.client.post("/custom-objects", body)
        except ConcurrentModification:
            pass

    def recent_events(self, limit: int = 50) -> list[EventReceipt]:
        """The newest inbox entries (for ``flask psp events list``)."""
        answer = self.client.get(f"/custom-objects/{EVENT_CONTAINER}", sort="createdAt desc", limit=limit)
        results = answer.get("results")
        if not isinstance(results, list):
            raise malformed()
        return [_parsed(_receipt, item) for item in results]

    def record_event_failure(self, event_id: str, event_type: str, error: str, payload: str) -> None:
        """Keep a failed event, or count another failed attempt of it (a lost race is retried)."""
        key = _object_key(event_id)

        def attempt() -> None:
            try:
                existing: JSON | None = self.client.get(f"/custom-objects/{FAILURE_CONTAINER}/{key}")
            except ResourceNotFound:
                existing = None
            now = _now()
            value = dict(existing["value"]) if existing else {
                "eventId": event_id, "type": event_type, "attempts": 0, "firstSeen": now, "payload": payload}
            value.update(attempts=int(value.get("attempts") or 0) + 1, lastSeen=now, error=error[:512])
            self.client.post("/custom-objects", {"container": FAILURE_CONTAINER, "key": key, "value": value,
                                                 "version": existing["version"] if existing else 0})

        self._retrying(attempt)

    def event_failures(self, limit: int = 50) -> list[EventFailure]:
        """The most recently failed events, newest first; ``resolved`` once in the inbox."""
        answer = self.client.get(f"/custom-objects/{FAILURE_CONTAINER}", sort="lastModifiedAt desc", limit=limit)
        results = answer.get("results")
        if not isinstance(results, list):
            raise malformed()
        failures = [_parsed(_failure, item) for item in results]
        keys = ", ".join(_quoted(_object_key(f.event_id)) for f in failures)
        resolved: set[str] = set()
        if keys:
            inbox = self.client.get(f"/custom-objects/{EVENT_CONTAINER}", where=f"key in ({keys})", limit=limit)
            resolved = {item.get("key") for item in inbox.get("results") or [] if isinstance(item, dict)}
        return [replace(f, resolved=_object_key(f.event_id) in resolved) for f in failures]

    def stored_event(self, event_id: str) -> str | None:
        """The payload kept for a failed event, if any."""
        try:
            data = self.client.get(f"/custom-objects/{FAILURE_CONTAINER}/{_object_key(event_id)}")
        except ResourceNotFound:
            return None
        payload = _dig(data, "value", "payload")
        return payload if isinstance(payload, str) else None

    # -- orders --------------------------------------------------------------------

    def create_order(self, cart_id: str) -> Order:
        """Turn the cart into an order exactly once; later calls return that order."""
        return self._order_for_cart(cart_id, None)

    def _order_json_by_cart(self, cart_id: str) -> JSON | None:
        if not _ID.match(cart_id):
            return None
        answer = self.client.get("/orders", where=f'cart(id="{cart_id}")', limit=1, expand=_EXPAND_PAYMENTS)
        results = answer.get("results")
        if not isinstance(results, list):
            raise malformed()
        return results[0] if results else None

    def find_order_by_cart(self, cart_id: str) -> Order | None:
        """Return the order the cart became, if any."""
        data = self._order_json_by_cart(cart_id)
        return None if data is None else _parsed(order_from_json, data, cart_id)

    def _order_for_cart(self, cart_id: str, ship_to: Callable[[], Address | None] | None) -> Order:
        """The cart's order, created (shipping to what ``ship_to`` finds if the cart has no
        address) when it has none yet, with its payment state in step with its payments."""
        existing = self._order_json_by_cart(cart_id)
        if existing is not None:
            return self._synced(existing, cart_id)

        def attempt() -> JSON:
            cart = self._cart_json(cart_id, expand=True)
            if cart.get("cartState") == CartState.ORDERED.value:
                ordered = self._order_json_by_cart(cart_id)
                if ordered is None:
                    raise InvalidOperation(f"Cart {cart_id} is ordered, but its order cannot be found.")
                return ordered
            return self._place_order(cart, ship_to)

        return _parsed(order_from_json, self._retrying(attempt), cart_id)

    def _place_order(self, cart: JSON, ship_to: Callable[[], Address | None] | None) -> JSON:
        """Order ``cart`` as read (its version named); a lost race raises ``ConcurrentModification``."""
        cart_id = cart["id"]
        shipping_address = ship_to() if ship_to is not None and not cart.get("shippingAddress") else None
        if shipping_address is not None:
            cart = self._update_cart(cart, [{"action": "setShippingAddress", "address": address_json(shipping_address)}],
                                     expand=_EXPAND_PAYMENTS)
        state = order_payment_state(_parsed(_payments_of, cart))
        body = {"cart": {"typeId": "cart", "id": cart_id}, "version": cart["version"],
                "orderNumber": order_number(cart_id), "orderState": "Open", "shipmentState": "Pending",
                "paymentState": _CT_ORDER_PAYMENT_STATE[state]}
        try:
            return self.client.post("/orders", body, expand=_EXPAND_PAYMENTS)
        except CommercetoolsAPIError:
            if self._order_json_by_cart(cart_id) is None:
                raise
            raise ConcurrentModification(f"Cart {cart_id} was ordered concurrently.") from None

    def _sync_order(self, cart_id: str) -> None:
        data = self._order_json_by_cart(cart_id)
        if data is not None:
            self._synced(data, cart_id)

    def _synced(self, data: JSON, cart_id: str) -> Order:
        """The order, its commercetools payment state first set to what its payments imply."""
        state = {"data": data}

        def attempt() -> JSON:
            current = state["data"]
            order = _parsed(order_from_json, current, cart_id)
            wanted = _CT_ORDER_PAYMENT_STATE[OrderPaymentState(order.payment_state)]
            if current.get("paymentState") == wanted:
                return current
            try:
                return self.client.post(
                    f"/orders/{segment(order.id)}",
                    {"version": order.version, "actions": [{"action": "changePaymentState", "paymentState": wanted}]},
                    expand=_EXPAND_PAYMENTS,
                )
            except ConcurrentModification:
                state["data"] = self.client.get(f"/orders/{segment(order.id)}", expand=_EXPAND_PAYMENTS)
                raise

        return _parsed(order_from_json, self._retrying(attempt), cart_id)

    # -- customers -----------------------------------------------------------------

    def create_customer(self, email: str, name: str = "") -> Customer:
        """Create a customer whose sign-in the shop handles (``authenticationMode`` ExternalAuth).

        :raises InvalidOperation: when the email is empty or already taken.
        """
        email = email.strip()
        if not email:
            raise InvalidOperation("A customer needs an email address.")
        first, _, last = name.strip().partition(" ")
        draft: JSON = {"email": email, "authenticationMode": "ExternalAuth"}
        if first:
            draft["firstName"] = first
        if last:
            draft["lastName"] = last
        try:
            answer = self.client.post("/customers", draft)
        except CommercetoolsAPIError as exc:
            if exc.code == "DuplicateField":
                raise InvalidOperation("A customer with this email already exists.") from None
            raise
        return _parsed(customer_from_json, answer.get("customer") or answer)

    def _customer_json(self, customer_id: str) -> JSON | None:
        if not _ID.match(customer_id):
            return None
        try:
            return self.client.get(f"/customers/{segment(customer_id)}")
        except ResourceNotFound:
            return None

    def get_customer(self, customer_id: str) -> Customer | None:
        """Return the customer, or ``None`` when the project has no such customer."""
        data = self._customer_json(customer_id)
        return None if data is None else _parsed(customer_from_json, data)

    def set_stripe_customer_id(self, customer_id: str, stripe_customer_id: str) -> Customer:
        """Store the Stripe customer id in upstream's custom field of the customer.

        ``setCustomField`` when the customer's custom type has the field, else
        ``setCustomType`` with the connector's customer type (installed by post-deploy).
        """

        def attempt() -> JSON:
            data = self._customer_json(customer_id)
            if data is None:
                raise ResourceNotFound(f"Customer {customer_id} not found.")
            fields = _dig(data, "custom", "fields")
            if isinstance(fields, dict) and _dig(data, "custom", "type", "id"):
                known = STRIPE_CUSTOMER_FIELD in fields or self._type_has_field(data["custom"]["type"]["id"])
            else:
                known = False
            if known:
                action: JSON = {"action": "setCustomField", "name": STRIPE_CUSTOMER_FIELD, "value": stripe_customer_id}
            else:
                action = {"action": "setCustomType", "type": {"key": CUSTOMER_TYPE_KEY, "typeId": "type"},
                          "fields": {STRIPE_CUSTOMER_FIELD: stripe_customer_id}}
            return self.client.post(f"/customers/{segment(customer_id)}",
                                    {"version": data["version"], "actions": [action]})

        return _parsed(customer_from_json, self._retrying(attempt))

    def _type_has_field(self, type_id: str) -> bool:
        definitions = self.client.get(f"/types/{segment(type_id)}").get("fieldDefinitions") or []
        return any(isinstance(d, dict) and d.get("name") == STRIPE_CUSTOMER_FIELD for d in definitions)

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
        if self._customer_json(customer_id) is None:
            raise ResourceNotFound(f"Customer {customer_id} not found.")
        return self.payment_methods.record(customer_id, stripe_payment_method_id, method,
                                           label(brand, last4, exp_month, exp_year))

    def remove_saved_payment_method(self, customer_id: str, saved_id: str) -> SavedPaymentMethod | None:
        """Delete one of this customer's Payment Methods; another customer's is never touched."""
        return self.payment_methods.remove(customer_id, saved_id)

    # -- deploy --------------------------------------------------------------------

    def install_custom_types(self) -> list[str]:
        """Create the connector's custom types, or add the fields they lack (idempotent)."""
        report = []
        for definition in CUSTOM_TYPES:
            key = definition["key"]
            try:
                existing = self.client.get(f"/types/key={key}")
            except ResourceNotFound:
                self.client.post("/types", definition)
                report.append(f"Created custom type {key}.")
                continue
            names = {field.get("name") for field in existing.get("fieldDefinitions") or [] if isinstance(field, dict)}
            missing = [field for field in definition["fieldDefinitions"] if field["name"] not in names]
            if missing:
                self.client.post(f"/types/key={key}", {
                    "version": existing["version"],
                    "actions": [{"action": "addFieldDefinition", "fieldDefinition": field} for field in missing],
                })
                report.append(f"Added {len(missing)} field(s) to custom type {key}.")
            else:
                report.append(f"Custom type {key} is up to date.")
        return report

    def remove_custom_types(self) -> list[str]:
        """Delete the connector's custom types; a type still in use is kept (idempotent)."""
        report = []
        for definition in CUSTOM_TYPES:
            key = definition["key"]
            try:
                existing = self.client.get(f"/types/key={key}")
            except ResourceNotFound:
                report.append(f"Custom type {key} is not there.")
                continue
            try:
                self.client.delete(f"/types/key={key}", version=existing["version"])
            except CommercetoolsAPIError as exc:
                if exc.code != "ReferenceExists":
                    raise
                report.append(f"Kept custom type {key}: resources still use it.")
                continue
            report.append(f"Deleted custom type {key}.")
        return report


# -- domain → commercetools -----------------------------------------------------------


def money_json(money: Money) -> JSON:
    """A commercetools Money draft."""
    return {"centAmount": money.cent_amount, "currencyCode": money.currency_code, "fractionDigits": money.fraction_digits}


def address_json(address: Address) -> JSON:
    """A commercetools BaseAddress, empty fields left out."""
    fields = {
        "firstName": address.first_name, "lastName": address.last_name, "streetName": address.street_name,
        "streetNumber": address.street_number, "additionalStreetInfo": address.additional_street_info,
        "postalCode": address.postal_code, "city": address.city, "state": address.state,
        "country": address.country, "phone": address.phone, "email": address.email,
    }
    return {key: value for key, value in fields.items() if value}


def order_number(cart_id: str) -> str:
    """The order number of the cart's order: derived from the cart, so a cart has one."""
    return hashlib.sha256(cart_id.encode()).hexdigest()[:16].upper()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _transaction_json(draft: TransactionDraft) -> JSON:
    return {"type": draft.type.value, "amount": money_json(draft.amount), "state": draft.state.value,
            "interactionId": draft.interaction_id, "timestamp": _now()}


def payment_actions(payment: Payment, changes: PaymentChanges) -> list[JSON]:
    """The update actions recording ``changes`` on ``payment``, by the model's matching rules.

    Empty when everything is recorded already. A draft matching a transaction added by
    an earlier draft of the same batch changes the state that transaction is added with.
    """
    actions: list[JSON] = []
    if changes.interface_id and not payment.interface_id:
        actions.append({"action": "setInterfaceId", "interfaceId": changes.interface_id})
    if changes.method and not payment.method:
        actions.append({"action": "setMethodInfoMethod", "method": changes.method})
    if changes.stale_reason and not payment.stale_reason:
        if payment.cart_fingerprint:  # the field lives in our payment type, which such payments have
            actions.append({"action": "setCustomField", "name": STALE_REASON_FIELD, "value": changes.stale_reason.value})
        else:
            log.warning("Payment %s is stale (%s); it has no custom type to record that in.", payment.id,
                        changes.stale_reason.value)
    current = list(payment.transactions)
    added: dict[str, JSON] = {}
    for draft in changes.transactions:
        change = match_transaction(current, draft)
        if isinstance(change, AddTransaction):
            placeholder = f"new:{len(added)}"
            added[placeholder] = {"action": "addTransaction", "transaction": _transaction_json(draft)}
            actions.append(added[placeholder])
            current.append(Transaction(placeholder, draft.type, draft.state, draft.amount, draft.interaction_id,
                                       datetime.now(UTC)))
        elif isinstance(change, ChangeState):
            if change.transaction_id in added:
                added[change.transaction_id]["transaction"]["state"] = change.state.value
            else:
                actions.append({"action": "changeTransactionState", "transactionId": change.transaction_id,
                                "state": change.state.value})
            current = [replace(t, state=change.state) if t.id == change.transaction_id else t for t in current]
    return actions


# -- commercetools → domain -----------------------------------------------------------


class _Malformed(Exception):
    """A commercetools resource lacks or garbles a field the connector needs."""


def _parsed(parse: Callable[..., T], *args: Any) -> T:
    """``parse(*args)``, with any reading problem reported as a malformed answer."""
    try:
        return parse(*args)
    except (_Malformed, KeyError, TypeError, ValueError, AttributeError, IndexError):
        raise malformed() from None


def _dig(data: Any, *path: str) -> Any:
    for key in path:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _object_key(event_id: str) -> str:
    """The inbox key of an event id (hashed when it has characters keys cannot hold)."""
    return event_id if _OBJECT_KEY.match(event_id) else "sha256-" + hashlib.sha256(event_id.encode()).hexdigest()


def _int(value: Any) -> int:
    if type(value) is not int:
        raise _Malformed("not an integer")
    return value


def money_from_json(data: JSON) -> Money:
    """A domain Money from a commercetools Money.

    ``centAmount`` is always in the currency's minor units (commercetools defines a
    cent-precision ``fractionDigits`` as the currency's default, and a high-precision
    amount's ``centAmount`` is its value rounded to them), so a ``fractionDigits`` that
    disagrees is not trusted: taking it would charge 100 times too much or too little.
    """
    money = Money.of(_int(data["centAmount"]), data["currencyCode"])
    digits = data.get("fractionDigits")
    if data.get("type") != "highPrecision" and digits is not None and _int(digits) != money.fraction_digits:
        log.warning("commercetools sent %s %s with fractionDigits %s; counted in %s's minor units.",
                    money.cent_amount, money.currency_code, digits, money.currency_code)
    return money


def _text(data: JSON, key: str) -> str:
    value = data.get(key)
    return value if isinstance(value, str) else ""


def address_from_json(data: Any) -> Address | None:
    """A domain Address from a commercetools address (``None`` stays ``None``)."""
    if not isinstance(data, dict):
        return None
    return Address(
        first_name=_text(data, "firstName"), last_name=_text(data, "lastName"),
        street_name=_text(data, "streetName"), street_number=_text(data, "streetNumber"),
        additional_street_info=_text(data, "additionalStreetInfo"), postal_code=_text(data, "postalCode"),
        city=_text(data, "city"), state=_text(data, "state"), country=_text(data, "country"),
        phone=_text(data, "phone") or _text(data, "mobile"), email=_text(data, "email"),
    )


def _name(value: Any) -> str:
    if isinstance(value, dict) and value:
        return str(value.get("en") or next(iter(value.values())))
    return str(value or "")


def _line_items(data: JSON) -> tuple[LineItem, ...]:
    return tuple(
        LineItem(item["id"], _text(item.get("variant") or {}, "sku"), _name(item.get("name")), _int(item["quantity"]),
                 money_from_json(item["price"]["value"]))
        for item in data.get("lineItems") or []
    )


@dataclass(frozen=True, slots=True)
class _Totals:
    total: Money
    shipping: int
    adjustments: int


def _totals(data: JSON, line_items: tuple[LineItem, ...]) -> _Totals:
    """What the customer owes (the taxed gross when taxes are calculated), split in the
    domain's parts: line items, shipping, and the rest (taxes net of discounts)."""
    gross = _dig(data, "taxedPrice", "totalGross")
    total = money_from_json(gross if isinstance(gross, dict) else data["totalPrice"])
    shipping = _dig(data, "shippingInfo", "price")
    shipping_amount = money_from_json(shipping).cent_amount if isinstance(shipping, dict) else 0
    subtotal = sum(item.total_price.cent_amount for item in line_items)
    return _Totals(total, shipping_amount, total.cent_amount - subtotal - shipping_amount)


def cart_from_json(data: JSON) -> Cart:
    """A domain Cart whose ``total_price`` is exactly what commercetools says is owed.

    Line items carry their unit price; ``tax_amount`` holds whatever lies between the
    line items plus shipping and that total (taxes, net of discounts).
    """
    line_items = _line_items(data)
    totals = _totals(data, line_items)
    return Cart(
        id=data["id"],
        version=_int(data["version"]),
        currency_code=totals.total.currency_code,
        line_items=line_items,
        shipping_amount=totals.shipping,
        tax_amount=totals.adjustments,
        state=CartState.ORDERED if data.get("cartState") == "Ordered" else CartState.ACTIVE,
        customer_id=data.get("customerId") if isinstance(data.get("customerId"), str) else None,
        customer_email=data.get("customerEmail") if isinstance(data.get("customerEmail"), str) else None,
        shipping_address=address_from_json(data.get("shippingAddress")),
        billing_address=address_from_json(data.get("billingAddress")),
        shipping_method_name=_optional_str(_dig(data, "shippingInfo", "shippingMethodName")),
        country=_optional_str(data.get("country")),
        store_key=_optional_str(_dig(data, "store", "key")),
        tax_calculation_references=_tax_references(_dig(data, "custom", "fields", TAX_REFERENCES_FIELD)),
        anonymous_id=_optional_str(data.get("anonymousId")),
    )


def _tax_references(value: Any) -> tuple[str, ...]:
    """Stripe Tax calculation ids from the cart's custom field (a Set of String, or one String)."""
    if isinstance(value, str):
        return (value,) if value else ()
    if isinstance(value, list):
        return tuple(item for item in value if isinstance(item, str) and item)
    return ()


def _optional_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def customer_from_json(data: JSON) -> Customer:
    """A domain Customer from a commercetools customer (Stripe id from upstream's custom field)."""
    name = " ".join(part for part in (data.get("firstName"), data.get("lastName")) if isinstance(part, str) and part)
    return Customer(
        id=data["id"],
        email=_text(data, "email"),
        name=name,
        stripe_customer_id=_optional_str(_dig(data, "custom", "fields", STRIPE_CUSTOMER_FIELD)),
    )


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def payment_from_json(data: JSON, cart_id: str) -> Payment:
    """A domain Payment; its id is its key when it has one (ours), else its commercetools id."""
    method_info = data.get("paymentMethodInfo") or {}
    secret = _dig(data, "custom", "fields", CLIENT_SECRET_FIELD)
    created_at = _timestamp(data.get("createdAt"))
    return Payment(
        id=data.get("key") or data["id"],
        version=_int(data["version"]),
        cart_id=cart_id,
        amount_planned=money_from_json(data["amountPlanned"]),
        payment_interface=_text(method_info, "paymentInterface"),
        interface_id=data.get("interfaceId") or None,
        method=method_info.get("method") or None,
        transactions=tuple(
            Transaction(t["id"], TransactionType(t["type"]), TransactionState(t["state"]), money_from_json(t["amount"]),
                        t.get("interactionId") or "", _timestamp(t.get("timestamp")) or created_at or _EPOCH)
            for t in data.get("transactions") or []
        ),
        client_secret=secret if isinstance(secret, str) and secret else None,
        created_at=created_at,
        intent_variant=_optional_str(_dig(data, "custom", "fields", INTENT_VARIANT_FIELD)) or "",
        cart_fingerprint=_optional_str(_dig(data, "custom", "fields", CART_FINGERPRINT_FIELD)) or "",
        cart_version=_optional_int(_dig(data, "custom", "fields", CART_VERSION_FIELD)),
        stale_reason=_stale_reason(_dig(data, "custom", "fields", STALE_REASON_FIELD)),
    )


def _optional_int(value: Any) -> int:
    return value if type(value) is int else 0


def _stale_reason(value: Any) -> StaleReason | None:
    return StaleReason(value) if value in set(StaleReason) else None


def _with_payment(cart: JSON | None, data: JSON) -> JSON | None:
    """``cart`` (payments expanded) holding the payment ``data`` as just read or written."""
    if cart is None:
        return None
    refs = _dig(cart, "paymentInfo", "payments") or []
    swapped = [{**ref, "obj": data} if isinstance(ref, dict) and ref.get("id") == data.get("id") else ref for ref in refs]
    return {**cart, "paymentInfo": {**cart.get("paymentInfo", {}), "payments": swapped}}


def _payment_ids_of(cart: JSON) -> list[str]:
    return [ref["id"] for ref in _dig(cart, "paymentInfo", "payments") or []]


def _payments_of(data: JSON) -> list[Payment]:
    """The expanded payments of a cart or order, oldest first."""
    payments = []
    for ref in _dig(data, "paymentInfo", "payments") or []:
        if "obj" not in ref:
            raise _Malformed("payment reference not expanded")
        payments.append(payment_from_json(ref["obj"], data.get("id") if "cart" not in data else data["cart"]["id"]))
    return sorted(payments, key=lambda p: (p.created_at or _EPOCH, p.id))


def _is_ordered(cart: JSON | None) -> bool:
    return bool(cart) and cart.get("cartState") == CartState.ORDERED.value  # type: ignore[union-attr]


def order_from_json(data: JSON, cart_id: str) -> Order:
    """A domain Order; its payment state is what its payments' transactions imply."""
    line_items = _line_items(data)
    totals = _totals(data, line_items)
    payments = _payments_of(data)
    return Order(
        id=data["id"],
        version=_int(data["version"]),
        cart_id=_dig(data, "cart", "id") or cart_id,
        order_number=data.get("orderNumber") or data["id"],
        currency_code=totals.total.currency_code,
        line_items=line_items,
        total_price=totals.total,
        shipping_amount=totals.shipping,
        tax_amount=totals.adjustments,
        payment_state=order_payment_state(payments).value,
        customer_email=data.get("customerEmail") if isinstance(data.get("customerEmail"), str) else None,
        shipping_address=address_from_json(data.get("shippingAddress")),
        billing_address=address_from_json(data.get("billingAddress")),
        payment_ids=tuple(p.id for p in payments),
        created_at=_timestamp(data.get("createdAt")),
    )


def _failure(data: JSON) -> EventFailure:
    value = data["value"]
    return EventFailure(
        event_id=value["eventId"], event_type=value.get("type") or "", error=value.get("error") or "",
        attempts=_int(value.get("attempts") or 0), first_seen=_timestamp(value.get("firstSeen")),
        last_seen=_timestamp(value.get("lastSeen")), payload=value.get("payload") or "",
    )


def _receipt(data: JSON) -> EventReceipt:
    value = data["value"]
    return EventReceipt(
        status=EventStatus(value["status"]),
        payment_id=value.get("paymentId"),
        detail=value.get("detail") or "",
        event_id=value.get("eventId") or data.get("key", ""),
        event_type=value.get("type") or "",
        received_at=_timestamp(value.get("receivedAt")),
    )

