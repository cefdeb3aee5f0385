"""The Commerce Layer external payment gateway, backed by Stripe (no Flask here).

Each action derives one key from Commerce Layer's ids and amounts. The key is Stripe's
idempotency key and the key of the answer kept in the store, so a repeated request gets
the same answer and Stripe sees one effect. Answers follow the protocol::

    200 {"success": true, "data": {"transaction_token", "amount_cents", "metadata"}}
    202 the same plus "action_id" (settled later by a signed callback)
    4xx {"success": false, "data": {"transaction_token", "amount_cents", "error": {"code", "message"}}}

``transaction_token`` is the PaymentIntent id for authorize, capture and void (Commerce
Layer hands it back as the transaction's ``token``), the Refund id for refunds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from flask_psp_connector.domain.money import Money, from_stripe_amount, stripe_amount_like
from flask_psp_connector.domain.payment import TransactionState
from flask_psp_connector.domain.stripe_status import AWAITING_STATUSES, IntentStatus, refund_state
from flask_psp_connector.errors import PSPError, StripeAPIError
from flask_psp_connector.gateways.commercelayer.payload import (
    AuthorizeRequest,
    OperationRequest,
    TokenRequest,
)
from flask_psp_connector.ports import Answer, AnswerStore, CallbackSettlement, StripePort

log = logging.getLogger("flask_psp_connector.gateways")

#: Where the answers are kept: any :class:`~flask_psp_connector.ports.AnswerStore`, whose own type
#: the gateway keeps, so the outbox side reads its callbacks through ``gateway.store``.
Store = TypeVar("Store", bound=AnswerStore)

#: Metadata marking the Stripe objects this gateway created, and the request they answer.
GATEWAY_MARK, REQUEST_KEY = "psp_gateway", "cl_request_key"
MARK_VALUE = "commercelayer"

class GatewayRefusal(PSPError):
    """Stripe's state makes the request impossible (e.g. voiding a captured payment)."""

    status = 422
    code = "invalid_state"


def success(token: str | None, amount: Money, metadata: dict[str, Any], *, action_id: str | None = None,
            **extra: Any) -> Answer:
    """A successful answer; with ``action_id`` an asynchronous one (202)."""
    data: dict[str, Any] = {"transaction_token": token, "amount_cents": amount.cent_amount, **extra,
                            "metadata": metadata}
    if action_id:
        data["action_id"] = action_id
    return Answer(202 if action_id else 200, {"success": True, "data": data}, action_id)


def failure(status: int, token: str | None, amount: Money | None, code: str, message: str) -> Answer:
    """A failed answer (HTTP >= 400), carrying Stripe's decline code when there is one."""
    data: dict[str, Any] = {"transaction_token": token, "amount_cents": None if amount is None else amount.cent_amount,
                            "error": {"code": code, "message": message}}
    return Answer(status, {"success": False, "data": data})


def _stripe_failure(exc: StripeAPIError, token: str | None, amount: Money | None) -> Answer:
    status = exc.status if 400 <= exc.status < 500 else 502
    return failure(status, token, amount, exc.decline_code or exc.code, exc.message)


#: An id used as is in a key: Stripe sends the key in an HTTP header, which must be ASCII,
#: and accepts at most 255 characters.
_PLAIN_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def _key_part(value: object) -> str:
    text = str(value)
    if _PLAIN_ID.fullmatch(text):
        return text
    return "h" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:40]


def request_key(action: str, *parts: object) -> str:
    """``cl-{action}-{part}-...``, always ASCII and short: a part that is not a plain id
    (non-ASCII characters, over 64 characters) is replaced by a digest of it."""
    return "-".join(["cl", action, *map(_key_part, parts)])


class CommerceLayerGateway(Generic[Store]):
    """The gateway's actions.

    :param store: where answers and callbacks are kept.
    :param stripe: the Stripe adapter.
    :param capture_method: ``manual`` (authorize, capture later) or ``automatic``.
    :param callback_url: the gateway's ``webhook_endpoint_url`` in Commerce Layer.
    """

    def __init__(self, store: Store, stripe: StripePort | None, *, capture_method: str,
                 callback_url: str) -> None:
        self.store = store
        self._stripe_gateway = stripe
        self.capture_method = capture_method
        self.callback_url = callback_url

    # -- actions -------------------------------------------------------------------

    def authorize(self, request: AuthorizeRequest) -> Answer:
        """Authorize the order's amount (charge it too, with automatic capture)."""
        amount = request.amount
        key = request_key("authorize", request.external_payment_id, amount.cent_amount, amount.currency_code)
        # One read finds both an earlier answer and the customer's saved Stripe customer.
        customer_key = _customer_key(request.customer_id) if request.customer_id else key
        kept = self.store.answers(key, customer_key)
        if key in kept:
            return kept[key]
        saved = kept.get(customer_key) if customer_key != key else None
        customer = saved.body.get("customer_token") if saved else None
        return self.store.record_answer(key, self._authorize(request, key, customer))

    def capture(self, request: OperationRequest) -> Answer:
        """Capture (part of) an authorization; one already captured for that amount is a success."""
        key = request_key("capture", request.transaction_id, request.amount.cent_amount)
        return self._once(key, lambda: self._capture(request, key))

    def void(self, request: OperationRequest) -> Answer:
        """Release an authorization; one already released is a success, a captured one is refused."""
        key = request_key("void", request.transaction_id)
        return self._once(key, lambda: self._void(request, key))

    def refund(self, request: OperationRequest) -> Answer:
        """Refund (part of) a capture; each partial refund has its own key via the balance."""
        key = request_key("refund", request.transaction_id, request.amount.cent_amount, request.balance)
        return self._once(key, lambda: self._refund(request, key))

    def customer_token(self, request: TokenRequest) -> Answer:
        """Save the PaymentMethod on the customer's Stripe customer (created once per customer)."""
        key = request_key("token", request.customer_id, request.payment_source_token)
        return self._once(key, lambda: self._customer_token(request))

    # -- settlement of asynchronous answers ------------------------------------------

    def settle_event(self, event: dict[str, Any]) -> str | None:
        """Settle the asynchronous answer a Stripe event concludes, enqueueing its callback.

        :returns: ``None`` when the event's object is not this gateway's, else what happened.
        :raises PSPError: (503) when the answer is not stored yet, so that Stripe retries.
        """
        obj = event["data"]["object"]
        metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
        if metadata.get(GATEWAY_MARK) != MARK_VALUE:
            return None
        key = metadata.get(REQUEST_KEY)
        body = _callback_body(obj, event["type"])
        if not key or body is None:
            return f"commercelayer: {obj.get('status')} concludes nothing"
        payload = json.dumps(body, separators=(",", ":"))
        result = self.store.settle(key, self.callback_url, payload)
        if result == CallbackSettlement.UNKNOWN:
            raise PSPError("The gateway's answer to this request is not stored yet.", status=503,
                           code="ServiceUnavailable")
        return f"commercelayer {obj['id']}: {result}"

    # -- the Stripe side ---------------------------------------------------------------

    def _once(self, key: str, compute: Callable[[], Answer]) -> Answer:
        """The answer kept for ``key``, else a new one, kept unless Stripe failed transiently."""
        kept = self.store.answer(key)
        if kept is not None:
            return kept
        return self.store.record_answer(key, compute())

    def _authorize(self, request: AuthorizeRequest, key: str, customer: str | None) -> Answer:
        amount = request.amount
        metadata = {GATEWAY_MARK: MARK_VALUE, REQUEST_KEY: key, "cl_order_id": request.order_id,
                    "cl_order_number": request.order_number, "cl_external_payment_id": request.external_payment_id}
        try:
            if request.payment_source_token.startswith("pi_"):
                intent = self._storefront_intent(request, key, metadata)
            else:
                intent = self._stripe().authorize_payment_method(
                    amount=amount.to_stripe(), currency=amount.currency_code,
                    payment_method=request.payment_source_token, capture_method=self.capture_method,
                    metadata=metadata, idempotency_key=key, return_url=request.return_url, customer=customer,
                )
        except StripeAPIError as exc:
            if exc.transient:
                raise
            return _stripe_failure(exc, None, amount)
        return _authorization_answer(intent, amount)

    def _storefront_intent(self, request: AuthorizeRequest, key: str, metadata: dict[str, str]) -> dict[str, Any]:
        """A PaymentIntent the storefront created: it must be for the order's amount and
        for no other request; it is marked as ours and confirmed if it still needs it."""
        stripe, amount = self._stripe(), request.amount
        intent = stripe.retrieve_payment_intent(request.payment_source_token)
        if intent.get("amount") != amount.to_stripe() or str(intent.get("currency", "")).upper() != amount.currency_code:
            raise GatewayRefusal(
                f"PaymentIntent {intent['id']} is for {intent.get('amount')} {str(intent.get('currency')).upper()}, "
                f"the order for {amount.to_stripe()} {amount.currency_code} (Stripe units).", code="amount_mismatch")
        owner = (intent.get("metadata") or {}).get(REQUEST_KEY)
        if owner not in (None, key):
            raise GatewayRefusal(f"PaymentIntent {intent['id']} already answers another request.", code="token_in_use")
        if intent.get("status") in (IntentStatus.REQUIRES_CONFIRMATION, *AWAITING_STATUSES) and owner is None:
            intent = stripe.update_payment_intent_metadata(intent["id"], metadata, idempotency_key=f"{key}-mark")
        if intent.get("status") == IntentStatus.REQUIRES_CONFIRMATION:
            intent = stripe.confirm_payment_intent(intent["id"], idempotency_key=f"{key}-confirm")
        return intent

    def _saved_customer(self, customer_id: str) -> str | None:
        saved = self.store.answer(_customer_key(customer_id))
        return None if saved is None else saved.body.get("customer_token")

    def _capture(self, request: OperationRequest, key: str) -> Answer:
        stripe, amount, pi = self._stripe(), request.amount, request.payment_intent_id
        try:
            intent = stripe.capture_payment_intent(pi, amount.to_stripe(), final=True, idempotency_key=key)
        except StripeAPIError as exc:
            if exc.transient:
                raise
            intent = stripe.retrieve_payment_intent(pi)
            status = intent.get("status")
            received = stripe_amount_like(amount, intent.get("amount_received", intent.get("amount")), intent["currency"])
            if status == IntentStatus.SUCCEEDED and received == amount:
                return success(pi, received, {"stripe_status": status, "already_captured": True})
            if status == IntentStatus.SUCCEEDED:
                raise GatewayRefusal(f"The authorization was already captured for {received.cent_amount}.",
                                     code="already_captured") from None
            if status == IntentStatus.CANCELED:
                raise GatewayRefusal("The authorization was voided; it cannot be captured.", code="voided") from None
            return _stripe_failure(exc, pi, amount)
        if intent.get("status") == IntentStatus.CANCELED:
            raise GatewayRefusal("The authorization was voided; it cannot be captured.", code="voided")
        received = stripe_amount_like(amount, intent.get("amount_received") or amount.to_stripe(), intent["currency"])
        return success(pi, received, {"stripe_status": intent.get("status")})

    def _void(self, request: OperationRequest, key: str) -> Answer:
        stripe, amount, pi = self._stripe(), request.amount, request.payment_intent_id
        try:
            intent = stripe.cancel_payment_intent(pi, idempotency_key=key)
        except StripeAPIError as exc:
            if exc.transient:
                raise
            intent = stripe.retrieve_payment_intent(pi)
            status = intent.get("status")
            if status == IntentStatus.SUCCEEDED:
                raise GatewayRefusal("The authorization was captured: refund the capture instead of voiding it.",
                                     code="already_captured") from None
            if status != IntentStatus.CANCELED:
                return _stripe_failure(exc, pi, amount)
        return success(pi, amount, {"stripe_status": intent.get("status")})

    def _refunded_before(self, request: OperationRequest) -> int:
        """What our own answers say was already refunded of the capture (pending refunds
        included), whatever the platform's balance claims."""
        prefix = request_key("refund", request.transaction_id) + "-"
        return sum(
            answer.body["data"]["amount_cents"]
            for key, answer in self.store.answers_starting_with(prefix).items()
            if _REFUND_KEY_TAIL.fullmatch(key[len(prefix):]) and answer.body.get("success") is True
        )

    def _refund(self, request: OperationRequest, key: str) -> Answer:
        amount = request.amount
        refunded = self._refunded_before(request)
        if refunded + amount.cent_amount > request.total.cent_amount:
            raise GatewayRefusal(
                f"Cannot refund {amount.cent_amount}: {refunded} of the capture's {request.total.cent_amount} "
                f"{amount.currency_code} is already refunded.", code="over_refund")
        metadata = {GATEWAY_MARK: MARK_VALUE, REQUEST_KEY: key, "cl_capture_id": request.transaction_id}
        try:
            refund = self._stripe().create_refund(request.payment_intent_id, amount.to_stripe(),
                                                  idempotency_key=key, metadata=metadata)
        except StripeAPIError as exc:
            if exc.transient:
                raise
            return _stripe_failure(exc, None, amount)
        status = refund.get("status")
        refunded_now = stripe_amount_like(amount, refund.get("amount"), refund.get("currency") or amount.currency_code)
        meta = {"stripe_status": status, "stripe_payment_intent": request.payment_intent_id}
        state = refund_state(status)
        if state == TransactionState.PENDING:
            return success(refund["id"], refunded_now, meta, action_id=refund["id"])
        if state == TransactionState.FAILURE:
            return failure(422, refund["id"], refunded_now, refund.get("failure_reason") or "refund_failed",
                           f"Stripe reports the refund as {status}.")
        return success(refund["id"], refunded_now, meta)

    def _customer_token(self, request: TokenRequest) -> Answer:
        stripe = self._stripe()
        customer_key = _customer_key(request.customer_id)
        try:
            customer = self._saved_customer(request.customer_id)
            if customer is None:
                created = stripe.create_customer(email=request.customer_email, idempotency_key=customer_key,
                                                 metadata={"cl_customer_id": request.customer_id})
                kept = self.store.record_answer(customer_key, Answer(200, {"customer_token": created["id"]}))
                customer = kept.body["customer_token"]
            stripe.attach_payment_method(request.payment_source_token, customer,
                                         idempotency_key=request_key("attach", request.payment_source_token, customer))
        except StripeAPIError as exc:
            if exc.transient:
                raise
            status = exc.status if 400 <= exc.status < 500 else 502
            return Answer(status, {"success": False, "data": {
                "error": {"code": exc.decline_code or exc.code, "message": exc.message}}})
        return Answer(200, {"success": True, "data": {
            "customer_token": customer, "payment_source_token": request.payment_source_token,
            "metadata": {"cl_customer_id": request.customer_id}}})

    def _stripe(self) -> StripePort:
        if self._stripe_gateway is None:
            raise PSPError("Stripe is not configured (STRIPE_SECRET_KEY).", status=503, code="ServiceUnavailable")
        return self._stripe_gateway


#: What follows ``cl-refund-{capture}-`` in a refund's key: its amount and the balance.
_REFUND_KEY_TAIL = re.compile(r"\d+-(\d+|None)")


def _customer_key(customer_id: str) -> str:
    return request_key("customer", customer_id)


def _authorization_answer(intent: dict[str, Any], amount: Money) -> Answer:
    """Map the PaymentIntent's status to the protocol (see the reference's status table)."""
    pi, status = intent["id"], intent.get("status")
    metadata: dict[str, Any] = {"stripe_payment_intent": pi, "stripe_status": status}
    if status == IntentStatus.REQUIRES_CAPTURE:
        capturable = intent.get("amount_capturable") or intent["amount"]
        return success(pi, stripe_amount_like(amount, capturable, intent["currency"]), metadata)
    if status == IntentStatus.SUCCEEDED:
        received = stripe_amount_like(amount, intent.get("amount_received") or intent["amount"], intent["currency"])
        return success(pi, received, metadata)
    if status in AWAITING_STATUSES:
        if status == IntentStatus.REQUIRES_ACTION:
            # The storefront finishes the customer's authentication with Stripe.js.
            metadata["stripe_client_secret"] = intent.get("client_secret")
        return success(pi, amount, metadata, action_id=pi)
    error = intent.get("last_payment_error") or {}
    if status == IntentStatus.REQUIRES_PAYMENT_METHOD and error:
        return failure(402, pi, amount, error.get("decline_code") or error.get("code") or "card_declined",
                       error.get("message") or "The payment was declined.")
    return failure(422, pi, amount, f"payment_intent_{status}", f"The PaymentIntent is {status}.")


def _callback_body(obj: dict[str, Any], event_type: str) -> dict[str, Any] | None:
    """The callback that Stripe's object concludes, or ``None`` while it is still pending."""
    status, currency = obj.get("status"), str(obj.get("currency") or "")
    if obj.get("object") == "refund":
        amount = from_stripe_amount(obj.get("amount") or 0, currency)
        state = refund_state(status)
        if state == TransactionState.SUCCESS:
            answer = success(obj["id"], amount, {"stripe_status": status})
        elif state == TransactionState.FAILURE:
            answer = failure(422, obj["id"], amount, obj.get("failure_reason") or "refund_failed",
                             f"Stripe reports the refund as {status}.")
        else:
            return None
    elif obj.get("object") == "payment_intent":
        amount = from_stripe_amount(obj.get("amount") or 0, currency)
        failed = bool(obj.get("last_payment_error")) or event_type == "payment_intent.payment_failed"
        if status in AWAITING_STATUSES or (status == IntentStatus.REQUIRES_PAYMENT_METHOD and not failed):
            return None
        answer = _authorization_answer(obj, amount)
    else:
        return None
    data = {**answer.body["data"], "action_id": obj["id"]}
    return {"success": answer.body["success"], "data": data}
