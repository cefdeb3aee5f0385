"""Customers on commercetools, and the Stripe customer id upstream keeps in a custom field."""

from __future__ import annotations

from flask_psp_connector.auth.oauth_client import JSON
from flask_psp_connector.domain.model import Customer
from flask_psp_connector.errors import InvalidOperation, ResourceNotFound
from flask_psp_connector.platforms.commercetools.client import CommercetoolsAPIError, CommercetoolsClient, segment
from flask_psp_connector.platforms.commercetools.custom_types import (
    CUSTOMER_TYPE_KEY,
    STRIPE_CUSTOMER_FIELD,
    type_has_field,
)
from flask_psp_connector.platforms.commercetools.mapping import customer_from_json, dig, parsed
from flask_psp_connector.platforms.commercetools.resources import Retrying, valid_id


class CustomerStore:
    """The customers of one project.

    :param client: the project's HTTP client.
    :param retrying: runs an attempt again after each lost race.
    """

    def __init__(self, client: CommercetoolsClient, retrying: Retrying) -> None:
        self.client = client
        self.retrying = retrying

    def create(self, email: str, name: str = "") -> Customer:
        """Create a customer whose sign-in the shop handles (``authenticationMode`` ExternalAuth).

        :raises InvalidOperation: when the email is empty or already taken.
        """
        email = email.strip()
        if not email:
            raise InvalidOperation("A customer needs an email address.")
        first, _, last = name.strip().partition(" ")
        draft: JSON = {"email": email, "authenticationMode": "ExternalAuth"}
        if first:
            draft["firstName"] = first
        if last:
            draft["lastName"] = last
        try:
            answer = self.client.post("/customers", draft)
        except CommercetoolsAPIError as exc:
            if exc.code == "DuplicateField":
                raise InvalidOperation("A customer with this email already exists.") from None
            raise
        return parsed(customer_from_json, answer.get("customer") or answer)

    def json(self, customer_id: str) -> JSON | None:
        """The customer as commercetools JSON, or ``None`` when there is no such customer."""
        if not valid_id(customer_id):
            return None
        try:
            return self.client.get(f"/customers/{segment(customer_id)}")
        except ResourceNotFound:
            return None

    def get(self, customer_id: str) -> Customer | None:
        """Return the customer, or ``None`` when the project has no such customer."""
        data = self.json(customer_id)
        return None if data is None else parsed(customer_from_json, data)

    def set_stripe_customer_id(self, customer_id: str, stripe_customer_id: str) -> Customer:
        """Store the Stripe customer id in upstream's custom field of the customer.

        ``setCustomField`` when the customer's custom type has the field, else
        ``setCustomType`` with the connector's customer type (installed by post-deploy).
        """

        def attempt() -> JSON:
            data = self.json(customer_id)
            if data is None:
                raise ResourceNotFound(f"Customer {customer_id} not found.")
            fields = dig(data, "custom", "fields")
            if isinstance(fields, dict) and dig(data, "custom", "type", "id"):
                known = STRIPE_CUSTOMER_FIELD in fields or type_has_field(
                    self.client, data["custom"]["type"]["id"], STRIPE_CUSTOMER_FIELD)
            else:
                known = False
            if known:
                action: JSON = {"action": "setCustomField", "name": STRIPE_CUSTOMER_FIELD, "value": stripe_customer_id}
            else:
                action = {"action": "setCustomType", "type": {"key": CUSTOMER_TYPE_KEY, "typeId": "type"},
                          "fields": {STRIPE_CUSTOMER_FIELD: stripe_customer_id}}
            return self.client.post(f"/customers/{segment(customer_id)}",
                                    {"version": data["version"], "actions": [action]})

        return parsed(customer_from_json, self.retrying(attempt))
