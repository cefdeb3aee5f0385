"""Realistic Stripe event payloads, signed with stripe-python's public helper."""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

import stripe
from flask import Flask

from flask_psp_connector import LineItemDraft
from flask_psp_connector.domain.money import Money
from flask_psp_connector.domain.payment import TransactionDraft, TransactionState, TransactionType
from flask_psp_connector.ports import PaymentDraft

SECRETS = ("whsec_test_current", "whsec_test_previous")
_ids = itertools.count(1)


def sign(payload: str, secret: str = SECRETS[0], timestamp: int | None = None) -> str:
    """The ``Stripe-Signature`` header Stripe would send for ``payload``."""
    return stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp=timestamp)


def post_event(client: Any, event: dict[str, Any], **signing: Any) -> Any:
    """POST a signed event to the webhook route."""
    payload = json.dumps(event)
    return client.post("/stripe/webhooks", data=payload, content_type="application/json; charset=utf-8",
                       headers={"Stripe-Signature": sign(payload, **signing)})


def event(event_type: str, obj: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    """A Stripe event envelope around ``obj``."""
    return {"id": event_id or f"evt_{next(_ids):08d}", "object": "event", "api_version": "2026-10-28.endive",
            "created": int(time.time()), "livemode": False, "pending_webhooks": 1, "type": event_type,
            "request": {"id": None, "idempotency_key": None}, "data": {"object": obj}}


def intent(pi_id: str, payment_id: str | None, *, status: str, amount: int = 3000, received: int = 0,
           **extra: Any) -> dict[str, Any]:
    body = {"id": pi_id, "object": "payment_intent", "amount": amount, "amount_received": received,
            "amount_capturable": 0, "currency": "eur", "status": status, "capture_method": "automatic",
            "latest_charge": f"ch_{pi_id[3:]}", "payment_method": "pm_card_visa", "shipping": None,
            "metadata": {"ct_payment_id": payment_id} if payment_id else {}}
    body.update(extra)
    return body


def charge(pi_id: str, *, refunds: list[dict[str, Any]] | None = None, captured: bool = True, **extra: Any) -> dict[str, Any]:
    refunded = sum(r["amount"] for r in refunds or [] if r["status"] == "succeeded")
    body = {"id": f"ch_{pi_id[3:]}", "object": "charge", "amount": 3000, "amount_captured": 3000 if captured else 0,
            "amount_refunded": refunded, "captured": captured, "currency": "eur", "payment_intent": pi_id,
            "status": "succeeded", "metadata": {}, "payment_method_details": {"type": "card", "card": {"brand": "visa"}},
            "billing_details": {"name": None, "address": None, "email": None, "phone": None}, "shipping": None}
    if refunds is not None:
        body["refunds"] = {"object": "list", "data": refunds, "has_more": False}
    body.update(extra)
    return body


def refund(refund_id: str, pi_id: str, amount: int, status: str = "succeeded") -> dict[str, Any]:
    return {"id": refund_id, "object": "refund", "amount": amount, "currency": "eur", "status": status,
            "payment_intent": pi_id, "charge": f"ch_{pi_id[3:]}", "metadata": {}}


def dispute(dispute_id: str, pi_id: str, status: str, amount: int = 3000) -> dict[str, Any]:
    return {"id": dispute_id, "object": "dispute", "amount": amount, "currency": "eur", "status": status,
            "charge": f"ch_{pi_id[3:]}", "payment_intent": pi_id, "reason": "fraudulent", "metadata": {}}


def stored_payment(app_or_store: Flask | Any, *, shipping: bool = True) -> tuple[str, str, str]:
    """A cart of 30.00 EUR with a payment waiting for its PaymentIntent; returns (cart, payment, pi) ids."""
    store = app_or_store.extensions["psp_connector"].platform if isinstance(app_or_store, Flask) else app_or_store
    from tests.conftest import SHIPPING

    cart = store.create_cart("EUR", line_items=[LineItemDraft("tee", "T-shirt", 2, 1500)],
                             customer_email="jane@example.test", shipping_address=SHIPPING if shipping else None)
    n = next(_ids)
    payment_id, pi_id = f"00000000-0000-4000-8000-{n:012d}", f"pi_test{n:06d}"
    money = Money.of(3000, "EUR")
    store.create_payment(PaymentDraft(payment_id, cart.id, money, "checkout-stripe", pi_id, f"{pi_id}_secret",
                                      (TransactionDraft(TransactionType.AUTHORIZATION, TransactionState.INITIAL, money, pi_id),)))
    return cart.id, payment_id, pi_id


def summary(payment: Any) -> list[tuple[str, str, str, int]]:
    """A payment's transactions as comparable tuples, in a stable order."""
    return sorted((t.type.value, t.state.value, t.interaction_id, t.amount.cent_amount) for t in payment.transactions)
