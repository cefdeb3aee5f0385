"""Customers at Stripe and their saved payment methods (no Flask here: ports come as arguments).

Our customer and their Stripe Customer are linked by our customer id in the Stripe
Customer's metadata (``ct_customer_id``, upstream's key), never by email: two shop
accounts may share an address, and an email alone proves nothing about who owns the
saved cards behind it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from flask_psp_connector.domain.model import Customer, SavedPaymentMethod
from flask_psp_connector.domain.stripe_status import PAID_STATUSES
from flask_psp_connector.errors import StripeAPIError
from flask_psp_connector.options import ConnectorOptions
from flask_psp_connector.ports import CommercePlatform, StripePort

log = logging.getLogger("flask_psp_connector.processor.customers")

#: The Stripe Customer metadata key naming our customer.
CUSTOMER_METADATA_KEY = "ct_customer_id"
# Only ids that cannot break out of a Stripe search query's quotes are searched for.
_SEARCHABLE_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def _belongs_to(stripe_customer: Mapping[str, Any], customer: Customer) -> bool:
    metadata = stripe_customer.get("metadata") or {}
    return not stripe_customer.get("deleted") and metadata.get(CUSTOMER_METADATA_KEY) == customer.id


def find_or_create_stripe_customer(platform: CommercePlatform, stripe: StripePort, customer: Customer) -> str:
    """The id of the Stripe Customer of ``customer``, created (and linked) if there is none.

    1. The stored id, if that Stripe Customer exists, is not deleted and names this
       customer in its metadata (a stored id naming someone else is never used).
    2. Else a Stripe Customer found by our id in its metadata.
    3. Else a new one, created with an idempotency key derived from our id and the
       stale link, so a retry never creates a second Customer.
    """
    if customer.stripe_customer_id:
        try:
            stored = stripe.retrieve_customer(customer.stripe_customer_id)
        except StripeAPIError as exc:
            if exc.status != 404:
                raise
        else:
            if _belongs_to(stored, customer):
                return customer.stripe_customer_id
        log.warning("Stripe customer linked to customer %s is missing, deleted or someone else's.", customer.id)
    found = None
    if _SEARCHABLE_ID.match(customer.id):
        query = f"metadata['{CUSTOMER_METADATA_KEY}']:'{customer.id}'"
        found = next((c for c in stripe.search_customers(query) if _belongs_to(c, customer)), None)
    if found is None:
        found = stripe.create_customer(
            email=customer.email or None,
            name=customer.name or None,
            metadata={CUSTOMER_METADATA_KEY: customer.id},
            idempotency_key=f"psp-customer-{customer.id}-{customer.stripe_customer_id or 'new'}",
        )
    platform.set_stripe_customer_id(customer.id, found["id"])
    return str(found["id"])


def customer_session(
    platform: CommercePlatform, stripe: StripePort, options: ConnectorOptions, cart_id: str
) -> dict[str, str] | None:
    """``{stripeCustomerId, ephemeralKey, sessionId}`` for the cart's customer; ``None`` for guests.

    ``sessionId`` is a CustomerSession client secret, which lets the Payment Element
    list, save and remove that Stripe Customer's payment methods.
    """
    cart = platform.get_cart(cart_id)
    if not cart.customer_id:
        return None
    customer = platform.get_customer(cart.customer_id)
    if customer is None:
        return None
    stripe_customer_id = find_or_create_stripe_customer(platform, stripe, customer)
    ephemeral_key = stripe.create_ephemeral_key(stripe_customer_id)
    session = stripe.create_customer_session(stripe_customer_id, options.saved_methods_features)
    return {
        "stripeCustomerId": stripe_customer_id,
        "ephemeralKey": ephemeral_key["secret"],
        "sessionId": session["client_secret"],
    }


def _payment_method_of(intent: Mapping[str, Any]) -> tuple[str | None, dict[str, Any] | None]:
    value = intent.get("payment_method")
    if isinstance(value, dict):
        return value.get("id"), value
    return value, None


def record_saved_payment_method(
    platform: CommercePlatform, stripe: StripePort, intent: Mapping[str, Any]
) -> SavedPaymentMethod | None:
    """Record the payment method of a paid PaymentIntent if its buyer chose to save it.

    Saved means: the PaymentIntent has a Customer and ``setup_future_usage``, or its
    payment method has ``allow_redisplay == "always"`` (the Payment Element's "save"
    box), and the method is attached to that Customer, which must be the one linked to
    our customer named in the metadata. Returns ``None`` (without any Stripe or store
    call) for PaymentIntents without a Customer. Idempotent.
    """
    stripe_customer_id = intent.get("customer")
    if isinstance(stripe_customer_id, dict):
        stripe_customer_id = stripe_customer_id.get("id")
    customer_id = (intent.get("metadata") or {}).get(CUSTOMER_METADATA_KEY)
    payment_method_id, method = _payment_method_of(intent)
    if not stripe_customer_id or not customer_id or not payment_method_id:
        return None
    if intent.get("status") not in PAID_STATUSES:
        return None
    customer = platform.get_customer(customer_id)
    if customer is None or customer.stripe_customer_id != stripe_customer_id:
        log.warning("PaymentIntent %s names a Stripe customer not linked to customer %s.", intent.get("id"), customer_id)
        return None
    if method is None:
        method = stripe.retrieve_payment_method(payment_method_id)
    attached_to = method.get("customer")
    if isinstance(attached_to, dict):
        attached_to = attached_to.get("id")
    if attached_to != stripe_customer_id:
        return None
    if not intent.get("setup_future_usage") and method.get("allow_redisplay") != "always":
        return None
    details = method.get(method.get("type") or "") or {}
    return platform.record_saved_payment_method(
        customer.id,
        payment_method_id,
        str(details.get("brand") or method.get("type") or ""),
        str(details.get("last4") or ""),
        details.get("exp_month"),
        details.get("exp_year"),
        method=str(method.get("type") or ""),
    )


def remove_saved_payment_method(
    platform: CommercePlatform, stripe: StripePort, customer_id: str, saved_id: str
) -> SavedPaymentMethod | None:
    """Detach one of the customer's saved methods at Stripe and delete its record.

    ``None`` when the customer has no such record (another customer's is never touched).
    A method Stripe no longer has attached is only forgotten.
    """
    saved = next((m for m in platform.saved_payment_methods(customer_id) if m.id == saved_id), None)
    if saved is None:
        return None
    try:
        stripe.detach_payment_method(saved.stripe_payment_method_id)
    except StripeAPIError as exc:
        # Already detached or deleted at Stripe: the record is all that is left to remove.
        if exc.transient or exc.status not in (400, 404):
            raise
        log.info("Payment method %s was no longer attached at Stripe (%s).", saved.stripe_payment_method_id, exc.code)
    return platform.remove_saved_payment_method(customer_id, saved_id)
