"""The Hantera PSP flow, backed by Stripe (no Flask here).

* :meth:`HanteraGateway.checkout` — the checkout ingress: one PaymentIntent per cart,
  for the amount Hantera renders for it, handed to the storefront as ``clientSecret``.
* :meth:`HanteraGateway.complete` — once the PaymentIntent is authorized (the
  storefront's confirm call or the webhook, whichever comes first): create the payment
  with a successful authorization, link it to the cart and complete the cart. Safe to
  run any number of times, concurrently too: a payment is looked up by its external
  reference (the PaymentIntent id) before one is created, a completed cart is left
  alone, and what was done is kept under the PaymentIntent's id.
* :meth:`HanteraGateway.capture` — the OnPaymentCapture job's call: capture the given
  amount at Stripe, then record the charge on the Hantera payment.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any, Generic, TypeVar

from flask_psp_connector.domain.money import Money, from_major, from_stripe_amount, stripe_amount_like
from flask_psp_connector.domain.stripe_status import AUTHORIZED_STATUSES, UNCONFIRMED_STATUSES, IntentStatus
from flask_psp_connector.errors import InvalidOperation, PSPError, StripeAPIError
from flask_psp_connector.gateways.hantera.port import COMPLETED, OPEN, HanteraAPIError, HanteraCart, HanteraPort
from flask_psp_connector.ports import Answer, AnswerStore, StripePort

log = logging.getLogger("flask_psp_connector.gateways")

#: Where the answers are kept: any :class:`~flask_psp_connector.ports.AnswerStore`, whose own type
#: the gateway keeps, so the outbox side reads its callbacks through ``gateway.store``.
Store = TypeVar("Store", bound=AnswerStore)

#: Metadata marking the PaymentIntents this flow created, and the cart they pay.
GATEWAY_MARK, MARK_VALUE, CART_KEY = "psp_gateway", "hantera", "hantera_cart_id"


class HanteraRefusal(PSPError):
    """The request cannot be done in the cart's or the payment's current state."""

    status = 409
    code = "invalid_state"


class HanteraGateway(Generic[Store]):
    """The flow's actions.

    :param store: where the cart's PaymentIntent and each completion are kept.
    :param stripe: the Stripe adapter.
    :param client: Hantera's HTTP API.
    :param capture_method: ``manual`` (the OnPaymentCapture job captures) or ``automatic``.
    :param number_prefix: the prefix of the payment numbers Hantera generates.
    """

    def __init__(self, store: Store, stripe: StripePort | None, client: HanteraPort, *,
                 capture_method: str, number_prefix: str) -> None:
        self.store = store
        self.client = client
        self._stripe_gateway = stripe
        self.capture_method = capture_method
        self.number_prefix = number_prefix

    # -- checkout ingress -------------------------------------------------------------

    def checkout(self, cart_id: str) -> str:
        """The client secret of the cart's PaymentIntent, for the cart's current total.

        The first call creates the PaymentIntent; later calls hand out the same one, its
        amount changed first when the cart's total changed.

        :raises HanteraRefusal: when the cart is not open, is empty, or is paid already.
        """
        cart = self.client.cart(cart_id)
        if cart.state != OPEN:
            raise HanteraRefusal(f"The cart is {cart.state}: it cannot be paid.", code="cart_not_open")
        if cart.total.cent_amount <= 0:
            raise HanteraRefusal("The cart has nothing to pay.", status=422, code="cart_empty")
        amount, currency = cart.total.to_stripe(), cart.total.currency_code
        key = _checkout_key(cart_id)
        kept = self.store.answer(key)
        if kept is None:
            intent = self._new_intent(cart, f"{key}-{amount}-{currency}")
            return str(self.store.record_answer(key, _checkout_answer(intent, cart)).body["client_secret"])
        previous = kept.body["payment_intent"]
        if kept.body.get("released"):
            intent = self._new_intent(cart, f"{key}-after-{previous}-{amount}-{currency}")
        elif (kept.body["amount"], kept.body["currency"]) == (amount, currency):
            return str(kept.body["client_secret"])
        else:
            intent = self._retotal(cart, previous, key)
        self.store.replace_answer(key, _checkout_answer(intent, cart))
        return str(intent["client_secret"])

    def _new_intent(self, cart: HanteraCart, idempotency_key: str) -> dict[str, Any]:
        return self._stripe().create_payment_intent(
            amount=cart.total.to_stripe(), currency=cart.total.currency_code, capture_method=self.capture_method,
            metadata={GATEWAY_MARK: MARK_VALUE, CART_KEY: cart.cart_id, "hantera_cart_number": cart.cart_number},
            idempotency_key=idempotency_key,
        )

    def _retotal(self, cart: HanteraCart, intent_id: str, key: str) -> dict[str, Any]:
        """The cart's PaymentIntent for its new total: the same one with its amount
        changed, or a new one when the old one was released."""
        stripe, amount, currency = self._stripe(), cart.total.to_stripe(), cart.total.currency_code
        try:
            return stripe.update_payment_intent_amount(intent_id, amount, currency,
                                                       idempotency_key=f"{key}-{intent_id}-{amount}-{currency}")
        except StripeAPIError as exc:
            if exc.transient:
                raise
            status = stripe.retrieve_payment_intent(intent_id).get("status")
            if status == IntentStatus.CANCELED:
                return self._new_intent(cart, f"{key}-after-{intent_id}-{amount}-{currency}")
            if status in UNCONFIRMED_STATUSES:
                raise
            raise HanteraRefusal(f"The cart's payment is {status}: its amount can no longer change.",
                                 code="payment_in_progress") from None

    # -- completion -------------------------------------------------------------------

    def confirm(self, cart_id: str) -> dict[str, Any]:
        """The storefront's call after Stripe.js confirmed: complete the cart if its
        PaymentIntent is authorized. Nothing the browser says is trusted: the
        PaymentIntent is read from Stripe.

        :returns: ``{"cartState", "paymentIntentStatus"}``.
        """
        kept = self.store.answer(_checkout_key(cart_id))
        if kept is None:
            raise HanteraRefusal("No payment was started for this cart.", status=404, code="payment_not_found")
        intent = self._stripe().retrieve_payment_intent(kept.body["payment_intent"])
        status = intent.get("status")
        if status in AUTHORIZED_STATUSES:
            self.complete(intent)
            return {"cartState": COMPLETED, "paymentIntentStatus": status}
        error = intent.get("last_payment_error") or {}
        if error and status == IntentStatus.REQUIRES_PAYMENT_METHOD:
            raise HanteraRefusal(error.get("message") or "The payment was declined.", status=402,
                                 code=error.get("decline_code") or error.get("code") or "card_declined")
        return {"cartState": OPEN, "paymentIntentStatus": status}

    def complete(self, intent: dict[str, Any]) -> str:
        """Create the payment for the authorized ``intent``, link it to its cart and
        complete the cart; idempotent by external reference and by cart state.

        :returns: what was done, in words.
        :raises HanteraRefusal: when the cart was rejected or its total no longer matches.
        """
        intent_id = intent["id"]
        key = f"hantera-complete-{intent_id}"
        kept = self.store.answer(key)
        if kept is not None:
            return f"cart {kept.body['cart_id']} already completed"
        cart_id = (intent.get("metadata") or {})[CART_KEY]
        cart = self.client.cart(cart_id)
        if cart.state == COMPLETED:
            self.store.record_answer(key, Answer(200, {"cart_id": cart_id, "payment_id": None}))
            return f"cart {cart_id} was completed already"
        if cart.state != OPEN:
            raise HanteraRefusal(f"The cart is {cart.state}; the authorization {intent_id} is left to release.",
                                 code="cart_not_open")
        authorized = _authorized(intent, cart.total.fraction_digits)
        if authorized != cart.total:
            self._give_back(intent)
            raise HanteraRefusal(
                f"The cart's total changed to {cart.total.to_major()} {cart.total.currency_code} after "
                f"{authorized.to_major()} was authorized: the payment was given back and the cart left open.",
                code="amount_mismatch")
        payment_id = self._payment_for(intent_id, authorized)
        self.client.complete_cart(cart_id, payment_id)
        self.store.record_answer(key, Answer(200, {"cart_id": cart_id, "payment_id": payment_id}))
        log.info("Hantera cart %s completed with payment %s (%s).", cart_id, payment_id, intent_id)
        return f"cart {cart_id} completed with payment {payment_id}"

    def _give_back(self, intent: dict[str, Any]) -> None:
        """Release an authorization (or refund a charge) that no longer pays its cart, so
        the next checkout of the cart starts a new PaymentIntent."""
        stripe, intent_id = self._stripe(), intent["id"]
        if intent.get("status") == IntentStatus.REQUIRES_CAPTURE:
            stripe.cancel_payment_intent(intent_id, idempotency_key=f"hantera-release-{intent_id}")
        else:
            stripe.create_refund(intent_id, intent.get("amount_received") or intent["amount"],
                                 idempotency_key=f"hantera-refund-{intent_id}",
                                 metadata={GATEWAY_MARK: MARK_VALUE, "reason": "cart total changed"})
            log.error("Hantera payment %s refunded: its cart's total changed after the charge.", intent_id)
        cart_id = intent["metadata"][CART_KEY]
        kept = self.store.answer(_checkout_key(cart_id))
        if kept is not None and kept.body["payment_intent"] == intent_id:
            self.store.replace_answer(_checkout_key(cart_id), Answer(200, {**kept.body, "released": True}))

    def _payment_for(self, intent_id: str, authorized: Money) -> str:
        """The Hantera payment of ``intent_id``: found by external reference, else created."""
        existing = self.client.find_payment(intent_id)
        if existing is not None:
            return existing
        try:
            created = self.client.create_payment(intent_id, authorized, self.number_prefix)
        except HanteraAPIError:
            # Another worker may have created it since the look-up (the reference is unique).
            existing = self.client.find_payment(intent_id)
            if existing is None:
                raise
            return existing
        return created or self._created_payment(intent_id)

    def _created_payment(self, intent_id: str) -> str:
        found = self.client.find_payment(intent_id)
        if found is None:
            raise HanteraAPIError(f"Hantera does not show the payment created for {intent_id} yet.", status=503,
                                  code="ServiceUnavailable")
        return found

    # -- webhook ----------------------------------------------------------------------

    def settle_event(self, event: dict[str, Any]) -> str | None:
        """Complete the cart a Stripe event authorizes.

        :returns: ``None`` when the event's object is not this flow's, else what happened.
        """
        obj = event["data"]["object"]
        metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
        if obj.get("object") != "payment_intent" or metadata.get(GATEWAY_MARK) != MARK_VALUE:
            return None
        if obj.get("status") not in AUTHORIZED_STATUSES or not metadata.get(CART_KEY):
            return f"hantera {obj['id']}: {obj.get('status')} completes nothing"
        try:
            return f"hantera {obj['id']}: {self.complete(obj)}"
        except HanteraRefusal as exc:
            log.error("Hantera payment %s not completed: %s", obj["id"], exc.message)
            return f"hantera {obj['id']}: not completed ({exc.code}: {exc.message})"

    # -- capture job ------------------------------------------------------------------

    def capture(self, external_reference: str, amount: Decimal | int, capture_id: str = "") -> dict[str, Any]:
        """Capture ``amount`` (major units) of the PaymentIntent ``external_reference`` and
        record the charge on its Hantera payment.

        Stripe captures a PaymentIntent once: the first capture takes its amount and
        releases the rest. Repeating a capture of the same amount is a success.
        """
        key = f"hantera-capture-{external_reference}-{Decimal(amount).normalize():f}-{capture_id}"
        completion = f"hantera-complete-{external_reference}"
        kept = self.store.answers(key, completion)
        if key in kept:
            return _capture_body(kept[key].body)
        intent = self._stripe().retrieve_payment_intent(external_reference)
        if (intent.get("metadata") or {}).get(GATEWAY_MARK) != MARK_VALUE:
            raise HanteraRefusal(f"{external_reference} is not a Hantera payment of this connector.", status=404,
                                 code="payment_not_found")
        try:
            wanted = from_major(amount, intent["currency"])
            if wanted.to_stripe() <= 0:
                raise InvalidOperation("The capture amount must be positive.")
        except InvalidOperation as exc:
            raise HanteraRefusal(exc.message, status=422, code="invalid_amount") from None
        captured = self._capture_at_stripe(intent, wanted, key)
        payment_id = (kept[completion].body["payment_id"] if completion in kept else None) \
            or self.client.find_payment(external_reference)
        if payment_id is None:
            raise HanteraRefusal(f"Hantera has no payment {external_reference} to record the capture on.",
                                 status=404, code="payment_not_found")
        self.client.charge(payment_id, captured, external_reference, external_reference)
        body = {"externalReference": external_reference, "paymentId": payment_id,
                "capturedAmount": str(captured.to_major()), "currencyCode": captured.currency_code}
        return _capture_body(self.store.record_answer(key, Answer(200, body)).body)

    def _capture_at_stripe(self, intent: dict[str, Any], wanted: Money, key: str) -> Money:
        """Capture ``wanted``; one captured already for that very amount is a success."""
        stripe, intent_id = self._stripe(), intent["id"]
        if intent.get("status") == IntentStatus.REQUIRES_CAPTURE:
            capturable = stripe_amount_like(wanted, intent.get("amount_capturable") or intent["amount"], intent["currency"])
            if wanted.cent_amount > capturable.cent_amount:
                raise HanteraRefusal(f"Only {capturable.to_major()} {capturable.currency_code} is authorized.",
                                     status=422, code="amount_too_large")
            try:
                stripe.capture_payment_intent(intent_id, wanted.to_stripe(), final=True, idempotency_key=key)
                return wanted
            except StripeAPIError as exc:
                if exc.transient:
                    raise
                intent = stripe.retrieve_payment_intent(intent_id)  # captured meanwhile?
        if intent.get("status") != IntentStatus.SUCCEEDED:
            raise HanteraRefusal(f"The PaymentIntent is {intent.get('status')}: nothing can be captured.",
                                 code="not_capturable")
        received = stripe_amount_like(wanted, intent.get("amount_received") or intent["amount"], intent["currency"])
        if received != wanted:
            raise HanteraRefusal(
                f"{received.to_major()} {received.currency_code} was captured already; a PaymentIntent is "
                "captured once.", code="already_captured")
        return received

    def _stripe(self) -> StripePort:
        if self._stripe_gateway is None:
            raise PSPError("Stripe is not configured (STRIPE_SECRET_KEY).", status=503, code="ServiceUnavailable")
        return self._stripe_gateway


def _checkout_key(cart_id: str) -> str:
    return f"hantera-checkout-{cart_id}"


def _checkout_answer(intent: dict[str, Any], cart: HanteraCart) -> Answer:
    """The cart's PaymentIntent, and the total (Stripe's unit) it was made for."""
    return Answer(200, {"payment_intent": intent["id"], "client_secret": intent["client_secret"],
                        "amount": cart.total.to_stripe(), "currency": cart.total.currency_code})


def _authorized(intent: dict[str, Any], fraction_digits: int) -> Money:
    """What ``intent`` secures: the capturable amount, or what was received."""
    amount = intent.get("amount_capturable") if intent.get("status") == IntentStatus.REQUIRES_CAPTURE else None
    return from_stripe_amount(amount or intent.get("amount_received") or intent["amount"],
                              str(intent["currency"]), fraction_digits)


def _capture_body(stored: dict[str, Any]) -> dict[str, Any]:
    """The capture's answer, its amount a Decimal again (kept as text in the store)."""
    return {**stored, "capturedAmount": Decimal(stored["capturedAmount"])}
