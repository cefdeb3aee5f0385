"""Reading carts, payments and orders as commercetools JSON, by id, key or query; how writes retry.

Ids that come from callers or Stripe metadata are checked against commercetools' id
pattern before they reach a URL or a predicate; a malformed one reads as "not found".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from flask_psp_connector.auth.oauth_client import JSON
from flask_psp_connector.errors import ResourceNotFound
from flask_psp_connector.platforms.commercetools.client import CommercetoolsClient, malformed, segment
from flask_psp_connector.platforms.commercetools.mapping import quoted

#: The ``expand`` parameter that reads a cart's or order's payments with it.
EXPAND_PAYMENTS = "paymentInfo.payments[*]"
_ID = re.compile(r"^[A-Za-z0-9_-]{1,256}$")

T = TypeVar("T")


class Retrying(Protocol):
    """Runs a write's attempt again after each lost race (the attempt re-reads what it decides on)."""

    def __call__(self, attempt: Callable[[], T], /) -> T:
        """Return ``attempt()``, retried after ``ConcurrentModification``."""
        ...


def valid_id(value: str) -> bool:
    """Whether ``value`` can be a commercetools id or key."""
    return bool(_ID.match(value))


def first_result(answer: JSON) -> JSON | None:
    """The first result of a query answer, or ``None`` when there is none."""
    results = answer.get("results")
    if not isinstance(results, list):
        raise malformed()
    return results[0] if results else None


def cart_json(client: CommercetoolsClient, cart_id: str, *, expand: bool = False) -> JSON:
    """The cart (with its payments when ``expand``), or :class:`ResourceNotFound`."""
    if not valid_id(cart_id):
        raise ResourceNotFound(f"Cart {cart_id} not found.")
    params = {"expand": EXPAND_PAYMENTS} if expand else {}
    try:
        return client.get(f"/carts/{segment(cart_id)}", **params)
    except ResourceNotFound:
        raise ResourceNotFound(f"Cart {cart_id} not found.") from None


def update_cart(client: CommercetoolsClient, cart: JSON, actions: list[JSON], **params: Any) -> JSON:
    """Apply ``actions`` to ``cart`` at the version it was read at."""
    return client.post(f"/carts/{segment(cart['id'])}", {"version": cart["version"], "actions": actions}, **params)


def cart_of_payment(client: CommercetoolsClient, ct_payment_id: str) -> JSON | None:
    """The cart (payments expanded) whose ``paymentInfo`` references the payment, if any."""
    return first_result(client.get(
        "/carts", where=f'paymentInfo(payments(id="{ct_payment_id}"))', limit=1, expand=EXPAND_PAYMENTS
    ))


def payment_json(client: CommercetoolsClient, payment_id: str) -> JSON | None:
    """Our payment by its key, else a payment by its commercetools id."""
    if not valid_id(payment_id):
        return None
    for path in (f"/payments/key={payment_id}", f"/payments/{payment_id}"):
        try:
            return client.get(path)
        except ResourceNotFound:
            continue
    return None


def payment_json_by_interface_id(client: CommercetoolsClient, interface_id: str) -> JSON | None:
    """The payment backed by this PaymentIntent id, if any."""
    return first_result(client.get("/payments", where=f"interfaceId={quoted(interface_id)}", limit=1))


def order_json_by_cart(client: CommercetoolsClient, cart_id: str) -> JSON | None:
    """The order (payments expanded) the cart became, if any."""
    if not valid_id(cart_id):
        return None
    return first_result(client.get("/orders", where=f'cart(id="{cart_id}")', limit=1, expand=EXPAND_PAYMENTS))
