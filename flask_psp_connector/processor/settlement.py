"""What is paid is what is ordered: settling succeeded payments against their carts (no Flask here).

A payment pays for the cart state it was created for (its :attr:`~flask_psp_connector.domain.model.Cart.fingerprint`).
When it succeeds, every entry point (``/confirmPayments``, webhooks, reconcile, a shop's
return or order page) settles it the same way, through the platform, under the payment's
and then the cart's lock (:func:`~flask_psp_connector.domain.settle.settle`): the order is placed only if the
payment pays for the cart as it is now. A payment for a state the cart no longer has, or
one that would pay the cart twice, is *stale*: it is marked so, and — per
``PSP_STALE_PAYMENTS`` — refunded (or, if only authorized, released) with a deterministic
idempotency key, or left flagged for the merchant.

Before a PaymentIntent for a changed cart is handed out, the unconfirmed PaymentIntents of
the cart's earlier states are cancelled (:func:`supersede_earlier_intents`), so that a
buyer can pay one cart once; one paid anyway in that race is settled as stale.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from flask_psp_connector.domain.model import Cart
from flask_psp_connector.domain.payment import Payment, StaleReason, TransactionDraft
from flask_psp_connector.domain.payment import TransactionState as State
from flask_psp_connector.domain.payment import TransactionType as Type
from flask_psp_connector.domain.settle import PaymentChanges, StaleHandler
from flask_psp_connector.domain.stripe_status import IntentStatus, refund_state
from flask_psp_connector.errors import StripeAPIError
from flask_psp_connector.observability import telemetry
from flask_psp_connector.options import STALE_REFUND
from flask_psp_connector.ports import CommercePlatform, StripePort

log = logging.getLogger("flask_psp_connector.processor.settlement")

def refundable(payment: Payment) -> int:
    """Minor units charged and not yet refunded (or being refunded)."""
    return payment.total(Type.CHARGE, State.SUCCESS) - payment.total(Type.REFUND, State.SUCCESS, State.PENDING)


def cancel_drafts(payment: Payment, intent_id: str) -> tuple[TransactionDraft, ...]:
    """The transactions of a cancelled (released) authorization."""
    planned = payment.amount_planned
    return (
        TransactionDraft(Type.AUTHORIZATION, State.FAILURE, planned, intent_id),
        TransactionDraft(Type.CANCEL_AUTHORIZATION, State.SUCCESS, planned, intent_id),
    )


def stale_handler(stripe: StripePort | None, policy: str) -> StaleHandler:
    """What undoes a stale payment under ``policy``: a refund of what it charged, a release
    of what it only authorized, or nothing (``flag``: the merchant decides).

    It runs under the payment's lock and decides from the payment's recorded transactions,
    so a second delivery finds the refund recorded and calls Stripe no more. A transient
    Stripe failure raises (the settlement rolls back and is retried); Stripe refusing for
    good (already refunded, say) leaves the payment flagged.
    """

    def undo(payment: Payment, reason: StaleReason) -> tuple[TransactionDraft, ...]:
        if payment.stale_reason is None:  # found stale just now, not again
            telemetry.record_payment("flagged")
        if policy != STALE_REFUND or stripe is None or not payment.interface_id:
            log.warning("Payment %s is stale (%s): flagged for the merchant.", payment.id, reason.value)
            return ()
        try:
            amount = refundable(payment)
            if amount > 0:
                money = payment.amount_planned.with_amount(amount)
                refund = stripe.create_refund(payment.interface_id, money.to_stripe(),
                                              idempotency_key=f"psp-stale-refund-{payment.id}")
                log.warning("Payment %s is stale (%s): refunded %s (%s).", payment.id, reason.value, amount, refund["id"])
                return (TransactionDraft(Type.REFUND, refund_state(refund.get("status")), money, refund["id"]),)
            if payment.has(Type.AUTHORIZATION, State.SUCCESS) and not payment.has(Type.CHARGE, State.SUCCESS):
                intent = stripe.cancel_payment_intent(payment.interface_id, idempotency_key=f"psp-cancel-{payment.id}")
                log.warning("Payment %s is stale (%s): authorization released.", payment.id, reason.value)
                return cancel_drafts(payment, intent["id"])
        except StripeAPIError as exc:
            if exc.transient:
                raise
            log.warning("Payment %s is stale (%s) and Stripe refused to undo it (%s): flagged for the merchant.",
                        payment.id, reason.value, exc.code)
        return ()

    return undo


def settle_payment(platform: CommercePlatform, stripe: StripePort | None, policy: str, payment_id: str) -> Payment:
    """Settle a payment already recorded as succeeded (idempotent): its order, or undo it as stale."""
    return platform.apply_changes(payment_id, PaymentChanges(create_order=True, on_stale=stale_handler(stripe, policy)))


def supersede_earlier_intents(
    platform: CommercePlatform, stripe: StripePort, cart: Cart, payments: Iterable[Payment]
) -> None:
    """Cancel at Stripe the PaymentIntents nobody has confirmed yet that were made for an
    earlier state of ``cart``, and record them as superseded.

    The idempotency key is the one every cancellation of that payment uses. A
    PaymentIntent Stripe will not cancel any more (someone just paid it) is left to its
    webhook, which settles it as stale; a transient failure raises, so no second client
    secret is handed out while the first may still be paid.
    """
    for payment in payments:
        unconfirmed = all(t.type == Type.AUTHORIZATION and t.state == State.INITIAL for t in payment.transactions)
        if payment.stale_reason is not None or not unconfirmed or not payment.interface_id or payment.pays_for(cart):
            continue
        try:
            intent = stripe.cancel_payment_intent(payment.interface_id, idempotency_key=f"psp-cancel-{payment.id}")
        except StripeAPIError as exc:
            if exc.transient:
                raise
            log.info("PaymentIntent %s of superseded payment %s not cancelled: %s", payment.interface_id,
                     payment.id, exc.code)
            continue
        if intent.get("status") != IntentStatus.CANCELED:
            continue
        platform.apply_changes(payment.id, PaymentChanges(cancel_drafts(payment, intent["id"]),
                                                          stale_reason=StaleReason.SUPERSEDED))
