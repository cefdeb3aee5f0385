"""Checkout use cases (no Flask here: ports come as arguments); the merchant's
operations (capture, cancel, refund) are in :mod:`.operations`.

Amounts always come from the server-side cart; how a cart is paid (flow, capture
method, future usage, billing address) follows its behaviour rule (:mod:`.behavior`). Every Stripe call that moves money
carries an idempotency key derived from our own ids and the payment's recorded state,
so a retried request can never create a second PaymentIntent, capture or refund.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from flask_psp_connector.domain.behavior import Behavior, resolve_behavior, tax_calculation
from flask_psp_connector.domain.model import Cart, CheckoutSession, Customer
from flask_psp_connector.domain.money import Money, stripe_amount_like
from flask_psp_connector.domain.payment import Payment, StaleReason, TransactionDraft
from flask_psp_connector.domain.payment import TransactionState as State
from flask_psp_connector.domain.payment import TransactionType as Type
from flask_psp_connector.domain.settle import PaymentChanges
from flask_psp_connector.domain.stripe_status import PAID_STATUSES, IntentStatus
from flask_psp_connector.errors import InvalidOperation, PSPError, ResourceNotFound
from flask_psp_connector.options import STALE_REFUND, ConnectorOptions
from flask_psp_connector.ports import CartRead, Checkout, CommercePlatform, PaymentDraft, StripePort
from flask_psp_connector.processor import customers
from flask_psp_connector.processor.settlement import stale_handler, supersede_earlier_intents

log = logging.getLogger("flask_psp_connector.processor.payments")

#: Namespace of the payment ids derived from a cart's state.
_PAYMENT_NAMESPACE = uuid.UUID("6f1c3a52-5a0e-4c38-9d55-1f0f4a0c2b7e")

APPROVED, PENDING, RECEIVED, REJECTED = "approved", "pending", "received", "rejected"


def amount_to_pay(cart: Cart, payments: Iterable[Payment]) -> Money:
    """What the cart still owes: its total minus its payments that count as paid for
    the cart as it is now (a payment made for an earlier state of the cart pays nothing).

    :raises InvalidOperation: when the cart has already been paid in full.
    """
    total = cart.total_price
    paid = sum(p.amount_planned.cent_amount for p in payments if p.counts_as_paid and p.pays_for(cart))
    if paid >= total.cent_amount:
        raise InvalidOperation(
            "The cart has already been paid in full",
            fields={"resource": cart.id, "paidAmount": paid, "cartAmount": total.cent_amount},
        )
    return total.with_amount(total.cent_amount - paid)


def config_element(
    platform: CommercePlatform, options: ConnectorOptions, checkout: Checkout, component: str
) -> dict[str, Any]:
    """What the browser needs to render the Payment (or Express Checkout) Element."""
    cart, payments = checkout.cart, checkout.payments
    amount = amount_to_pay(cart, payments)
    express = component.lower().startswith("express")
    behavior = resolve_behavior(options.behavior, options.behavior_rules, cart)
    appearance = options.express_checkout_appearance if express else options.payment_element_appearance
    body: dict[str, Any] = {
        "cartInfo": {"amount": amount.cent_amount, "currency": amount.currency_code},
        "captureMethod": behavior.capture_method,
        "layout": options.layout,
        "collectBillingAddress": behavior.collect_billing_address,
        "paymentElementOptions": options.payment_element_options,
        "flowType": behavior.flow_type,
    }
    if appearance is not None:
        body["appearance"] = appearance
    # Only a known customer's PaymentIntent gets setup_future_usage (see create_payment;
    # in Express Checkout only with x-express-customer-session), and Stripe.js refuses
    # a PaymentIntent whose usage differs from the Elements'.
    if behavior.setup_future_usage and _known_customer(platform, cart) is not None:
        body["setupFutureUsage"] = behavior.setup_future_usage
    return body


def _known_customer(platform: CommercePlatform, cart: Cart) -> Customer | None:
    return platform.get_customer(cart.customer_id) if cart.customer_id else None


@dataclass(frozen=True, slots=True)
class CheckoutPayment:
    """The answer to ``/payments``: what the browser confirms with Stripe."""

    client_secret: str
    payment: Payment
    cart: Cart
    billing_address: str | None


def _is_reusable(payment: Payment, cart: Cart, amount: Money, variant: str) -> bool:
    """A payment nobody has confirmed yet, for this state of the cart, the same amount
    and the same customer and future usage, can be handed out again."""
    return (
        payment.pays_for(cart)
        and payment.amount_planned == amount
        and payment.intent_variant == variant
        and bool(payment.client_secret)
        and all(t.type == Type.AUTHORIZATION and t.state == State.INITIAL for t in payment.transactions)
    )


@dataclass(frozen=True, slots=True)
class _IntentCustomer:
    """Who a new PaymentIntent is for: its Stripe Customer and setup_future_usage."""

    customer: str | None = None
    setup_future_usage: str | None = None

    @property
    def variant(self) -> str:
        """Names this choice; empty for a guest's PaymentIntent (the ids of before stay valid)."""
        return f"customer={self.customer};sfu={self.setup_future_usage or ''}" if self.customer else ""


def _intent_variant(for_whom: _IntentCustomer, behavior: Behavior, options: ConnectorOptions, tax: str | None) -> str:
    """Everything a PaymentIntent was made with beyond the cart state; only what differs
    from the defaults is named, so the payment ids of plain checkouts stay as they were."""
    parts = [for_whom.variant] if for_whom.variant else []
    if behavior.capture_method != options.behavior.capture_method:
        parts.append(f"capture={behavior.capture_method}")
    if tax:
        parts.append(f"tax={tax}")
    return ";".join(parts)


def _intent_customer(
    platform: CommercePlatform, stripe: StripePort, behavior: Behavior, cart: Cart,
    express: bool, express_customer_session: bool,
) -> _IntentCustomer:
    """Upstream's rule: a known customer's PaymentIntent gets their Stripe Customer and
    setup_future_usage, except in Express Checkout without its customer session header."""
    if express and not express_customer_session:
        return _IntentCustomer()
    customer = _known_customer(platform, cart)
    if customer is None:
        return _IntentCustomer()
    # A link is written only once its Stripe Customer was checked to be this customer's.
    stripe_customer = customer.stripe_customer_id or customers.find_or_create_stripe_customer(platform, stripe, customer)
    return _IntentCustomer(stripe_customer, behavior.setup_future_usage)


def create_payment(
    platform: CommercePlatform,
    stripe: StripePort,
    options: ConnectorOptions,
    checkout: Checkout,
    *,
    express: bool = False,
    express_customer_session: bool = False,
) -> CheckoutPayment:
    """Create (or hand out again) the payment and PaymentIntent for the checkout's cart,
    as read with its session.

    The payment id is derived from the cart's state (and, for a known customer, from
    the PaymentIntent's customer and future usage), and the PaymentIntent's idempotency
    key from the payment id, so retries and concurrent calls for the same cart state end
    on one PaymentIntent. The id is in the PaymentIntent's metadata from the start: one
    Stripe call per new payment, none for a retry. A cart changed in the Express
    Checkout sheet (address, shipping) has a new version, hence a new amount and payment.

    The payment records the cart state it pays for (fingerprint and version). Before a
    client secret for a changed cart is handed out, the unconfirmed PaymentIntents of
    the cart's earlier states are cancelled at Stripe.

    :param express: the Express Checkout Element asks (``x-express-checkout``).
    :param express_customer_session: it runs with the customer's session
        (``x-express-customer-session``); only then does its PaymentIntent get the customer.
    """
    cart, payments = checkout.cart, checkout.payments
    amount = amount_to_pay(cart, payments)
    supersede_earlier_intents(platform, stripe, cart, payments)
    behavior = resolve_behavior(options.behavior, options.behavior_rules, cart)
    for_whom = _intent_customer(platform, stripe, behavior, cart, express, express_customer_session)
    tax = tax_calculation(cart)
    variant = _intent_variant(for_whom, behavior, options, tax)
    payment = next((p for p in reversed(payments) if _is_reusable(p, cart, amount, variant)), None)
    if payment is None:
        state = f"{cart.id}:{cart.version}:{len(payments)}" + (f":{variant}" if variant else "")
        payment_id = str(uuid.uuid5(_PAYMENT_NAMESPACE, state))
        metadata = {"cart_id": cart.id, "ct_project_key": options.project_key, "ct_payment_id": payment_id}
        if cart.customer_id:
            metadata["ct_customer_id"] = cart.customer_id
        capture_method = behavior.capture_method
        intent = stripe.create_payment_intent(
            amount=amount.to_stripe(),
            currency=amount.currency_code,
            capture_method=capture_method,
            metadata=metadata,
            idempotency_key=f"psp-payment-intent-{payment_id}",
            multicapture=options.multicapture and capture_method == "manual",
            customer=for_whom.customer,
            setup_future_usage=for_whom.setup_future_usage,
            tax_calculation=tax,
        )
        payment = platform.create_payment(
            PaymentDraft(
                id=payment_id,
                cart_id=cart.id,
                amount_planned=amount,
                payment_interface=options.payment_interface,
                interface_id=intent["id"],
                client_secret=intent.get("client_secret"),
                transactions=(TransactionDraft(Type.AUTHORIZATION, State.INITIAL, amount, intent["id"]),),
                intent_variant=variant,
                cart_fingerprint=cart.fingerprint,
                cart_version=cart.version,
                customer_id=cart.customer_id,
                anonymous_id=cart.anonymous_id,
            )
        )
    billing = None
    if behavior.collect_billing_address != "auto":
        billing = _billing_details(cart)
    return CheckoutPayment(payment.client_secret or "", payment, cart, billing)


def _billing_details(cart: Cart) -> str:
    address = cart.billing_address or cart.shipping_address
    details = address.to_stripe() if address else {"name": "", "phone": "", "address": {}}
    return json.dumps({**details, "email": cart.customer_email or ""})


class ConfirmationRejected(PSPError):
    """The PaymentIntent does not prove that this payment was paid."""

    status = 400
    code = "InvalidOperation"


class StalePayment(ConfirmationRejected):
    """The payment succeeded for a cart state that is no longer the cart's: no order was
    placed with it, and it was refunded (or released) or flagged for the merchant."""

    def __init__(self, payment: Payment) -> None:
        undone = payment.has(Type.REFUND, State.SUCCESS, State.PENDING) or payment.has(
            Type.CANCEL_AUTHORIZATION, State.SUCCESS)
        reason = ("your cart was already paid" if payment.stale_reason == StaleReason.ALREADY_PAID
                  else "your cart changed while you were paying")
        outcome = "this payment is being refunded" if undone else "the shop will refund this payment"
        super().__init__(f"No order was placed: {reason}, so {outcome}. Please check your cart and pay again.")
        self.payment = payment


def confirm_payment(
    platform: CommercePlatform,
    stripe: StripePort,
    session: CheckoutSession,
    payment_id: str,
    payment_intent_id: str,
    *,
    stale_policy: str = STALE_REFUND,
) -> str:
    """Check the PaymentIntent against our payment, record what Stripe says and settle
    the payment against its cart (see :mod:`~flask_psp_connector.processor.settlement`).

    :returns: ``"approved"`` or ``"pending"`` (async settlement).
    :raises ConfirmationRejected: when the PaymentIntent is not a paid one for this payment.
    :raises StalePayment: when it paid for a cart state the cart no longer has.
    """
    read, payment = _payment_of_session(platform, session, payment_id)
    if payment.cart_id != session.cart_id:
        raise ConfirmationRejected(f"Payment {payment_id} does not belong to the session's cart.")
    intent = stripe.retrieve_payment_intent(payment_intent_id)
    status = intent.get("status")
    if status not in PAID_STATUSES:
        raise ConfirmationRejected(f"PaymentIntent status is {status}.")
    if (intent.get("metadata") or {}).get("ct_payment_id") != payment.id:
        raise ConfirmationRejected("PaymentIntent belongs to another payment.")
    planned = payment.amount_planned
    if intent.get("amount") != planned.to_stripe() or str(intent.get("currency", "")).upper() != planned.currency_code:
        raise ConfirmationRejected("PaymentIntent amount or currency differs from the payment.")
    if status == IntentStatus.PROCESSING:
        drafts = [TransactionDraft(Type.AUTHORIZATION, State.PENDING, planned, intent["id"])]
    else:
        drafts = [TransactionDraft(Type.AUTHORIZATION, State.SUCCESS, planned, intent["id"])]
        if status == IntentStatus.SUCCEEDED:
            charged = stripe_amount_like(planned, intent.get("amount_received") or intent["amount"])
            drafts.append(TransactionDraft(Type.CHARGE, State.SUCCESS, charged, intent["id"]))
    changes = PaymentChanges(tuple(drafts), interface_id=intent["id"], create_order=status != IntentStatus.PROCESSING,
                             on_stale=stale_handler(stripe, stale_policy))
    recorded = platform.apply_changes(payment.id, changes, cart_id=session.cart_id, read=read)
    if recorded.stale_reason is not None:
        raise StalePayment(recorded)
    if intent.get("customer"):
        _remember_saved_method(platform, stripe, intent)
    return PENDING if status == IntentStatus.PROCESSING else APPROVED


def _payment_of_session(platform: CommercePlatform, session: CheckoutSession,
                        payment_id: str) -> tuple[CartRead | None, Payment]:
    """The payment, looked for among the session cart's payments first (where it belongs),
    and that read, on which the payment is then written."""
    try:
        read = platform.get_cart_and_payments(session.cart_id)
    except ResourceNotFound:
        return None, platform.get_payment(payment_id)
    found = next((p for p in read.payments if p.id == payment_id), None)
    return read, found if found is not None else platform.get_payment(payment_id)


def _remember_saved_method(platform: CommercePlatform, stripe: StripePort, intent: Mapping[str, Any]) -> None:
    """Record the payment method the buyer chose to save; a failure here never undoes the payment."""
    try:
        customers.record_saved_payment_method(platform, stripe, intent)
    except PSPError as exc:
        log.warning("Saved payment method of PaymentIntent %s not recorded: %s", intent.get("id"), exc.message)
