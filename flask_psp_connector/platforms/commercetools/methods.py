"""Saved payment methods in commercetools' Payment Methods API, as upstream stores them.

One PaymentMethod per (customer, Stripe PaymentMethod): ``customer`` references our
customer, ``paymentInterface`` is ``PAYMENT_INTERFACE``, ``token.value`` the Stripe
PaymentMethod id and ``method`` its type. What the shop shows (brand, last digits,
expiry) is kept in ``name`` so no extra custom type is needed. The key is derived from
the customer and the token, so two concurrent recordings end on one PaymentMethod.
Needs the ``manage_payment_methods`` scope.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from flask_psp_connector.auth.oauth_client import JSON
from flask_psp_connector.domain.model import SavedPaymentMethod
from flask_psp_connector.errors import ResourceNotFound
from flask_psp_connector.platforms.commercetools.client import CommercetoolsAPIError, CommercetoolsClient, segment
from flask_psp_connector.platforms.commercetools.mapping import quoted, timestamp
from flask_psp_connector.platforms.commercetools.resources import valid_id

_NAME = re.compile(r"^(?P<brand>\S*) \*{4}(?P<last4>\d{0,4})(?: (?P<month>\d{1,2})/(?P<year>\d{4}))?$")


def method_key(customer_id: str, token: str) -> str:
    """The PaymentMethod key of one customer's Stripe PaymentMethod (commercetools' key pattern)."""
    return "stripe-" + hashlib.sha256(f"{customer_id}\n{token}".encode()).hexdigest()[:40]


def label(brand: str, last4: str, exp_month: int | None, exp_year: int | None) -> str:
    """``visa ****4242 12/2034``: the PaymentMethod's name, which :func:`saved_method` reads back."""
    text = f"{brand.replace(' ', '_') or 'card'} ****{last4[-4:]}"
    return f"{text} {exp_month}/{exp_year}" if exp_month and exp_year else text


def saved_method(data: JSON) -> SavedPaymentMethod:
    """A domain SavedPaymentMethod from a commercetools PaymentMethod."""
    raw = data.get("name")
    name: JSON = raw if isinstance(raw, dict) else {}
    parsed = _NAME.match(str(name.get("en") or ""))
    return SavedPaymentMethod(
        id=data["id"],
        customer_id=(data.get("customer") or {}).get("id", ""),
        stripe_payment_method_id=(data.get("token") or {}).get("value", ""),
        brand=parsed["brand"] if parsed else str(data.get("method") or ""),
        last4=parsed["last4"] if parsed else "",
        exp_month=int(parsed["month"]) if parsed and parsed["month"] else None,
        exp_year=int(parsed["year"]) if parsed and parsed["year"] else None,
        created_at=timestamp(data.get("createdAt")),
    )


class PaymentMethodStore:
    """The saved-method half of the commercetools platform.

    :param client: the project's HTTP client.
    :param payment_interface: ``PAYMENT_INTERFACE``; only PaymentMethods of this interface are ours.
    """

    def __init__(self, client: CommercetoolsClient, payment_interface: str) -> None:
        self.client = client
        self.payment_interface = payment_interface

    def _query(self, customer_id: str, *conditions: str) -> list[JSON]:
        where = " and ".join((f"customer(id={quoted(customer_id)})",
                              f"paymentInterface={quoted(self.payment_interface)}",
                              'paymentMethodStatus="Active"', *conditions))
        answer = self.client.get("/payment-methods", where=where, sort="createdAt asc", limit="500")
        return [item for item in answer.get("results") or [] if isinstance(item, dict)]

    def list(self, customer_id: str) -> list[SavedPaymentMethod]:
        """The customer's active PaymentMethods of our interface, oldest first."""
        if not valid_id(customer_id):
            return []
        return [saved_method(item) for item in self._query(customer_id)]

    def find(self, customer_id: str, token: str) -> SavedPaymentMethod | None:
        """The customer's PaymentMethod whose token value is ``token``, if any."""
        found = self._query(customer_id, f"token(value={quoted(token)})")
        return saved_method(found[0]) if found else None

    def record(self, customer_id: str, token: str, method: str, name: str) -> SavedPaymentMethod:
        """Create the PaymentMethod, or return the one the customer already has for ``token``.

        :raises ResourceNotFound: when commercetools has no such customer.
        """
        existing = self.find(customer_id, token) if valid_id(customer_id) else None
        if existing is not None:
            return existing
        draft: dict[str, Any] = {
            "key": method_key(customer_id, token),
            "customer": {"typeId": "customer", "id": customer_id},
            "paymentInterface": self.payment_interface,
            "method": method or "card",
            "token": {"value": token},
            "name": {"en": name},
            "paymentMethodStatus": "Active",
        }
        try:
            return saved_method(self.client.post("/payment-methods", draft))
        except CommercetoolsAPIError as exc:
            if exc.code == "DuplicateField":  # recorded meanwhile by a concurrent delivery
                return saved_method(self.client.get(f"/payment-methods/key={draft['key']}"))
            if exc.code == "ReferencedResourceNotFound":
                raise ResourceNotFound(f"Customer {customer_id} not found.") from None
            raise

    def remove(self, customer_id: str, saved_id: str) -> SavedPaymentMethod | None:
        """Delete the PaymentMethod if it is this customer's and ours; ``None`` otherwise."""
        if not valid_id(saved_id):
            return None
        try:
            data = self.client.get(f"/payment-methods/{segment(saved_id)}")
        except ResourceNotFound:
            return None
        if (data.get("customer") or {}).get("id") != customer_id or data.get("paymentInterface") != self.payment_interface:
            return None
        try:
            self.client.delete(f"/payment-methods/{segment(saved_id)}", version=str(data["version"]))
        except ResourceNotFound:
            pass  # deleted meanwhile: the outcome asked for
        return saved_method(data)
