"""Merchant operations on a payment: capture, cancel, refund, reverse (no Flask here).

Amounts beyond what can be captured or refunded are refused before Stripe is called;
each Stripe call carries an idempotency key derived from the payment's recorded state.
With multicapture, every capture is recorded by its balance transaction (see
:mod:`.captures`), the id under which ``charge.updated`` reports it too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask_psp_connector.domain.captures import capture_drafts, requested_multicapture
from flask_psp_connector.domain.money import Money
from flask_psp_connector.domain.payment import Payment, TransactionDraft
from flask_psp_connector.domain.payment import TransactionState as State
from flask_psp_connector.domain.payment import TransactionType as Type
from flask_psp_connector.domain.stripe_status import charge_id, refund_state
from flask_psp_connector.errors import InvalidOperation, StripeAPIError
from flask_psp_connector.options import ConnectorOptions
from flask_psp_connector.ports import CommercePlatform, StripePort
from flask_psp_connector.processor.settlement import cancel_drafts, refundable

log = logging.getLogger("flask_psp_connector.processor.payments")

APPROVED, RECEIVED, REJECTED = "approved", "received", "rejected"

__all__ = ["PaymentAction", "capturable", "modify_payment", "refundable"]


@dataclass(frozen=True, slots=True)
class PaymentAction:
    """One operation on a payment: capturePayment, cancelPayment, refundPayment, reversePayment.

    ``cent_amount`` is counted in the payment's minor units, in ``currency_code``.
    """

    action: str
    cent_amount: int | None = None
    currency_code: str | None = None


def modify_payment(
    platform: CommercePlatform,
    stripe: StripePort,
    options: ConnectorOptions,
    payment_id: str,
    action: PaymentAction,
) -> str:
    """Run a merchant operation and record its result on the payment.

    Amounts beyond what can be captured or refunded are refused before Stripe is
    called. A Stripe refusal is answered as ``"rejected"``, as upstream does.

    :returns: ``"approved"``, ``"received"`` or ``"rejected"``.
    """
    payment = platform.get_payment(payment_id)
    if not payment.interface_id:
        raise InvalidOperation("The payment has no PaymentIntent.")
    planned = payment.amount_planned
    amount = None
    if action.cent_amount is not None:
        if (action.currency_code or "").upper() != planned.currency_code:
            raise InvalidOperation(
                f"Amount currency {action.currency_code} differs from the payment's {planned.currency_code}."
            )
        amount = planned.with_amount(action.cent_amount)
    operation = {
        "capturePayment": _capture,
        "cancelPayment": _cancel,
        "refundPayment": _refund,
        "reversePayment": _reverse,
    }.get(action.action)
    if operation is None:
        raise InvalidOperation("Operation not supported.")
    try:
        return operation(platform, stripe, options, payment, amount)
    except StripeAPIError as exc:
        log.warning("Stripe refused %s on payment %s: %s (%s)", action.action, payment.id, exc.code, exc.message)
        return REJECTED


def _checked(amount: Money | None, available: Money, verb: str, adjective: str) -> Money:
    """Refuse a missing, non-positive or too large amount before Stripe is called."""
    if amount is None:
        raise InvalidOperation(f"An amount is required to {verb}.")
    if amount.cent_amount <= 0:
        raise InvalidOperation(f"The amount to {verb} must be positive.")
    if amount.cent_amount > available.cent_amount:
        raise InvalidOperation(
            f"Cannot {verb} {_major(amount)}: {_major(available)} is {adjective}.",
            fields={f"{adjective}Amount": available.cent_amount},
        )
    return amount


def _major(money: Money) -> str:
    """``12.34 EUR``: an amount as people read it, in messages."""
    return f"{money.to_major()} {money.currency_code}"


def capturable(payment: Payment, *, multicapture: bool) -> int:
    """Minor units that can still be captured (a single capture releases the rest)."""
    if not payment.has(Type.AUTHORIZATION, State.SUCCESS) or payment.has(Type.CANCEL_AUTHORIZATION, State.SUCCESS):
        return 0
    captured = payment.total(Type.CHARGE, State.SUCCESS, State.PENDING)
    if captured and not multicapture:
        return 0
    return payment.amount_planned.cent_amount - captured


def _capture(
    platform: CommercePlatform, stripe: StripePort, options: ConnectorOptions, payment: Payment, amount: Money | None
) -> str:
    multicapture = options.multicapture
    available = capturable(payment, multicapture=multicapture)
    money = _checked(amount, payment.amount_planned.with_amount(available), "capture", "capturable")
    captured = payment.total(Type.CHARGE, State.SUCCESS, State.PENDING)
    intent = stripe.capture_payment_intent(
        payment.interface_id or "",
        money.to_stripe(),
        final=not (multicapture and money.cent_amount < available),
        idempotency_key=f"psp-capture-{payment.id}-{captured}-{money.cent_amount}",
    )
    if requested_multicapture(intent) and charge_id(intent):
        # Every capture so far, each under its balance transaction: charge.updated reports
        # them the same way, so neither side counts one twice.
        drafts = capture_drafts(payment, stripe.list_balance_transactions(charge_id(intent) or ""),
                                intent.get("amount_received"))
    else:
        # A single capture shares the PaymentIntent id with payment_intent.succeeded.
        drafts = [TransactionDraft(Type.CHARGE, State.SUCCESS, money, intent["id"])]
    platform.apply_transactions(payment.id, drafts)
    return APPROVED


def _cancel(
    platform: CommercePlatform, stripe: StripePort, options: ConnectorOptions, payment: Payment, amount: Money | None
) -> str:
    if payment.has(Type.CHARGE, State.SUCCESS, State.PENDING):
        raise InvalidOperation("A captured payment cannot be cancelled; refund it instead.")
    intent = stripe.cancel_payment_intent(payment.interface_id or "", idempotency_key=f"psp-cancel-{payment.id}")
    platform.apply_transactions(payment.id, cancel_drafts(payment, intent["id"]))
    return APPROVED


def _refund(
    platform: CommercePlatform, stripe: StripePort, options: ConnectorOptions, payment: Payment, amount: Money | None
) -> str:
    money = _checked(amount, payment.amount_planned.with_amount(refundable(payment)), "refund", "refundable")
    refunded = payment.total(Type.REFUND, State.SUCCESS, State.PENDING)
    refund = stripe.create_refund(
        payment.interface_id or "",
        money.to_stripe(),
        idempotency_key=f"psp-refund-{payment.id}-{refunded}-{money.cent_amount}",
    )
    state = refund_state(refund.get("status"))
    platform.apply_transactions(payment.id, [TransactionDraft(Type.REFUND, state, money, refund["id"])])
    return RECEIVED


def _reverse(
    platform: CommercePlatform, stripe: StripePort, options: ConnectorOptions, payment: Payment, amount: Money | None
) -> str:
    live = (State.SUCCESS, State.PENDING)
    reverted = payment.has(Type.REFUND, *live) or payment.has(Type.CANCEL_AUTHORIZATION, *live)
    if payment.has(Type.CHARGE, State.SUCCESS) and not reverted:
        return _refund(platform, stripe, options, payment, payment.amount_planned.with_amount(refundable(payment)))
    if payment.has(Type.AUTHORIZATION, State.SUCCESS) and not reverted:
        return _cancel(platform, stripe, options, payment, None)
    raise InvalidOperation("There is no successful payment transaction to reverse.")
