"""Payments on commercetools: finding, creating and writing them, and settling them against their cart.

Every write names the payment version it was decided on; a 409 re-reads the payment,
decides again on what is now stored and retries, a bounded number of times.
Transaction writes follow :func:`~flask_psp_connector.domain.model.match_transaction`,
so writing the same effect twice is a no-op. Creating a payment is idempotent by its
key; a payment left unattached by a crash between its creation and ``addPayment`` is
attached by the retry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

from flask_psp_connector.auth.oauth_client import JSON
from flask_psp_connector.domain.payment import Payment, StaleReason, TransactionDraft
from flask_psp_connector.domain.settle import PaymentChanges, Settlement, settle
from flask_psp_connector.errors import ConcurrentModification, ResourceNotFound
from flask_psp_connector.platforms.commercetools.client import CommercetoolsAPIError, CommercetoolsClient, malformed, segment
from flask_psp_connector.platforms.commercetools.custom_types import (
    CART_FINGERPRINT_FIELD,
    CART_VERSION_FIELD,
    CLIENT_SECRET_FIELD,
    INTENT_VARIANT_FIELD,
    PAYMENT_TYPE_KEY,
)
from flask_psp_connector.platforms.commercetools.mapping import (
    cart_from_json,
    dig,
    is_ordered,
    money_json,
    parsed,
    payment_actions,
    payment_from_json,
    payment_ids_of,
    payments_of,
    transaction_json,
    with_payment,
)
from flask_psp_connector.platforms.commercetools.orders import OrderSync
from flask_psp_connector.platforms.commercetools.resources import (
    Retrying,
    cart_json,
    cart_of_payment,
    payment_json,
    payment_json_by_interface_id,
    update_cart,
)
from flask_psp_connector.ports import PaymentDraft, PaymentRef

log = logging.getLogger("flask_psp_connector.commercetools")


@dataclass(frozen=True, slots=True)
class Found:
    """A payment as read, with what writing to it needs, and its cart (payments expanded,
    this one as last read or written), which a settlement decides on before reading again."""

    payment: Payment
    ct_id: str
    cart: JSON | None


class PaymentWriter:
    """The payments of one project, written by the model's matching rules.

    :param client: the project's HTTP client.
    :param retrying: runs an attempt again after each lost race.
    :param orders: places a settled cart's order and keeps orders in step with their payments.
    """

    def __init__(self, client: CommercetoolsClient, retrying: Retrying, orders: OrderSync) -> None:
        self.client = client
        self.retrying = retrying
        self.orders = orders

    # -- reading -------------------------------------------------------------------

    def _found(self, data: JSON | None) -> Found | None:
        if data is None:
            return None
        ct_id = data.get("id")
        if not isinstance(ct_id, str):
            raise malformed()
        cart = cart_of_payment(self.client, ct_id)
        cart_id = cart.get("id", "") if cart else ""
        return Found(parsed(payment_from_json, data, cart_id), ct_id, cart)

    def found_in_cart(self, cart_id: str, payment_id: str) -> Found | None:
        """The payment (by key, else id) among the expanded payments of ``cart_id``: one read."""
        try:
            cart = cart_json(self.client, cart_id, expand=True)
        except ResourceNotFound:
            return None
        return self.found_in(cart, payment_id)

    @staticmethod
    def found_in(cart: JSON, payment_id: str) -> Found | None:
        """The payment (by key, else id) among the expanded payments of ``cart`` as read."""
        objects = [ref.get("obj") for ref in dig(cart, "paymentInfo", "payments") or [] if isinstance(ref, dict)]
        for field in ("key", "id"):
            for data in objects:
                if isinstance(data, dict) and data.get(field) == payment_id and isinstance(data.get("id"), str):
                    return Found(parsed(payment_from_json, data, cart["id"]), data["id"], cart)
        return None

    def find(self, ref: PaymentRef) -> Found | None:
        """The payment ``ref`` names: in its cart first, else by id or key, else by PaymentIntent id."""
        if ref.cart_id and ref.payment_id:
            found = self.found_in_cart(ref.cart_id, ref.payment_id)
            if found is not None:
                return found
        data = payment_json(self.client, ref.payment_id) if ref.payment_id else None
        if data is None and ref.interface_id:
            data = payment_json_by_interface_id(self.client, ref.interface_id)
        return self._found(data)

    def resolve_id(self, ref: PaymentRef) -> str | None:
        """Our payment's id, by its id if it exists, else by its PaymentIntent id."""
        data = payment_json(self.client, ref.payment_id) if ref.payment_id else None
        if data is None and ref.interface_id:
            data = payment_json_by_interface_id(self.client, ref.interface_id)
        if data is None:
            return None
        payment_id = data.get("key") or data.get("id")
        if not isinstance(payment_id, str):
            raise malformed()
        return payment_id

    # -- creating ------------------------------------------------------------------

    def create(self, draft: PaymentDraft) -> Payment:
        """Create the payment (keyed by ``draft.id``) and add it to its cart; an existing key is reused.

        With ``draft.cart_version`` the cart as the caller read it is enough (its version
        and owner); a cart changed since is read again by the 409 of ``addPayment``.
        """
        if draft.cart_version:
            read: JSON = {"id": draft.cart_id, "version": draft.cart_version, "customerId": draft.customer_id,
                          "anonymousId": draft.anonymous_id}
        else:
            read = cart_json(self.client, draft.cart_id)
        state = {"cart": read}
        data = self._create(draft, state["cart"])
        ct_id = data.get("id")
        if not isinstance(ct_id, str):
            raise malformed()

        def attach() -> JSON:
            cart = state["cart"]
            if ct_id in parsed(payment_ids_of, cart):
                return cart
            try:
                return update_cart(self.client, cart,
                                   [{"action": "addPayment", "payment": {"typeId": "payment", "id": ct_id}}])
            except ConcurrentModification:
                state["cart"] = cart_json(self.client, draft.cart_id)
                raise

        self.retrying(attach)
        return parsed(payment_from_json, data, draft.cart_id)

    def _create(self, draft: PaymentDraft, cart: JSON) -> JSON:
        body: JSON = {
            "key": draft.id,
            "amountPlanned": money_json(draft.amount_planned),
            "interfaceId": draft.interface_id,
            "paymentMethodInfo": {"paymentInterface": draft.payment_interface},
            "transactions": [transaction_json(t) for t in draft.transactions],
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

    # -- writing -------------------------------------------------------------------

    def _write(self, found: Found, plan: Callable[[Payment], PaymentChanges]) -> tuple[Found, PaymentChanges]:
        """Apply ``plan`` to the stored payment; after a 409, re-read and decide again."""
        state = {"found": found}

        def attempt() -> tuple[Found, PaymentChanges]:
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
                state["found"] = replace(current, payment=parsed(payment_from_json, fresh, current.payment.cart_id),
                                         cart=with_payment(current.cart, fresh))
                raise
            return replace(current, payment=parsed(payment_from_json, data, current.payment.cart_id),
                           cart=with_payment(current.cart, data)), changes

        return self.retrying(attempt)

    def change(self, found: Found, plan: Callable[[Payment], PaymentChanges]) -> Payment:
        """Write what ``plan`` decides, settle the payment if it asks, keep the order in step."""
        written, changes = self._write(found, plan)
        cart_id = written.payment.cart_id
        if changes.create_order and cart_id:
            return self._settle(written, changes)
        if is_ordered(found.cart) and written.payment != found.payment:
            self.orders.sync(cart_id)
        return written.payment

    def _settle(self, found: Found, changes: PaymentChanges) -> Payment:
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

        def decide(cart: JSON) -> tuple[Found, bool, Settlement]:
            current = _found_in(cart, found)
            ordered = is_ordered(cart)
            payments = parsed(payments_of, cart)
            return current, ordered, settle(current.payment, parsed(cart_from_json, cart), payments, ordered=ordered)

        def attempt() -> Payment:
            cart = known.pop() if known else cart_json(self.client, cart_id, expand=True)
            current, ordered, verdict = decide(cart)
            if cart is found.cart and not ordered and not verdict.place_order and verdict.stale is None:
                cart = cart_json(self.client, cart_id, expand=True)
                current, ordered, verdict = decide(cart)
            payment = current.payment
            if verdict.stale is not None:
                payment = self._write(current, mark_stale(verdict.stale))[0].payment
            elif verdict.place_order:
                self.orders.place(cart, changes.ship_to)
                return payment
            if ordered:
                self.orders.sync(cart_id)
            return payment

        return self.retrying(attempt)


def _found_in(cart_json: JSON, found: Found) -> Found:
    """The payment as the expanded cart holds it (its freshest version)."""
    for ref in dig(cart_json, "paymentInfo", "payments") or []:
        if ref.get("id") == found.ct_id and isinstance(ref.get("obj"), dict):
            return replace(found, payment=parsed(payment_from_json, ref["obj"], cart_json["id"]), cart=cart_json)
    return found
