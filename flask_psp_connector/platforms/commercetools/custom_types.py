"""The connector's commercetools custom types, and their installation by ``flask psp post-deploy``.

The field names here are what :mod:`~flask_psp_connector.platforms.commercetools.mapping`
reads and writes; the types are created (or completed) by post-deploy and removed by
pre-undeploy.
"""

from __future__ import annotations

from flask_psp_connector.auth.oauth_client import JSON
from flask_psp_connector.errors import ResourceNotFound
from flask_psp_connector.platforms.commercetools.client import CommercetoolsAPIError, CommercetoolsClient, segment

#: Custom type of the payments we create: keeps the PaymentIntent's client secret, so a
#: retried ``/payments`` hands out the same PaymentIntent.
PAYMENT_TYPE_KEY = "payment-connector-stripe-payment"
CLIENT_SECRET_FIELD = "stripeConnector_clientSecret"
#: The PaymentIntent's customer/setup_future_usage choice (see ``Payment.intent_variant``).
INTENT_VARIANT_FIELD = "stripeConnector_intentVariant"
#: The cart state a payment pays for (``Payment.cart_fingerprint``, ``Payment.cart_version``).
CART_FINGERPRINT_FIELD = "stripeConnector_cartFingerprint"
CART_VERSION_FIELD = "stripeConnector_cartVersion"
#: Why a payment pays for no order of its cart (``Payment.stale_reason``).
STALE_REASON_FIELD = "stripeConnector_staleReason"
#: Custom type upstream adds to customers (their Stripe customer id).
CUSTOMER_TYPE_KEY = "payment-connector-stripe-customer-id"
STRIPE_CUSTOMER_FIELD = "stripeConnector_stripeCustomerId"
#: Upstream's cart custom field holding Stripe Tax calculation ids (a type we do not own).
TAX_REFERENCES_FIELD = "connectorStripeTax_calculationReferences"

#: The custom types ``flask psp post-deploy`` creates and ``pre-undeploy`` removes.
CUSTOM_TYPES: tuple[JSON, ...] = (
    {
        "key": CUSTOMER_TYPE_KEY,
        "name": {"en": "Stripe customer id"},
        "resourceTypeIds": ["customer"],
        "fieldDefinitions": [
            {"name": STRIPE_CUSTOMER_FIELD, "label": {"en": "Stripe customer id"},
             "required": False, "type": {"name": "String"}, "inputHint": "SingleLine"},
        ],
    },
    {
        "key": PAYMENT_TYPE_KEY,
        "name": {"en": "Stripe payment"},
        "resourceTypeIds": ["payment"],
        "fieldDefinitions": [
            {"name": CLIENT_SECRET_FIELD, "label": {"en": "Stripe PaymentIntent client secret"},
             "required": False, "type": {"name": "String"}, "inputHint": "SingleLine"},
            {"name": INTENT_VARIANT_FIELD, "label": {"en": "Stripe PaymentIntent customer and future usage"},
             "required": False, "type": {"name": "String"}, "inputHint": "SingleLine"},
            {"name": CART_FINGERPRINT_FIELD, "label": {"en": "Cart state this payment pays for"},
             "required": False, "type": {"name": "String"}, "inputHint": "SingleLine"},
            {"name": CART_VERSION_FIELD, "label": {"en": "Cart version this payment was created for"},
             "required": False, "type": {"name": "Number"}},
            {"name": STALE_REASON_FIELD, "label": {"en": "Why this payment pays for no order"},
             "required": False, "type": {"name": "String"}, "inputHint": "SingleLine"},
        ],
    },
)


def install_custom_types(client: CommercetoolsClient) -> list[str]:
    """Create the connector's custom types, or add the fields they lack (idempotent)."""
    report = []
    for definition in CUSTOM_TYPES:
        key = definition["key"]
        try:
            existing = client.get(f"/types/key={key}")
        except ResourceNotFound:
            client.post("/types", definition)
            report.append(f"Created custom type {key}.")
            continue
        names = {field.get("name") for field in existing.get("fieldDefinitions") or [] if isinstance(field, dict)}
        missing = [field for field in definition["fieldDefinitions"] if field["name"] not in names]
        if missing:
            client.post(f"/types/key={key}", {
                "version": existing["version"],
                "actions": [{"action": "addFieldDefinition", "fieldDefinition": field} for field in missing],
            })
            report.append(f"Added {len(missing)} field(s) to custom type {key}.")
        else:
            report.append(f"Custom type {key} is up to date.")
    return report


def remove_custom_types(client: CommercetoolsClient) -> list[str]:
    """Delete the connector's custom types; a type still in use is kept (idempotent)."""
    report = []
    for definition in CUSTOM_TYPES:
        key = definition["key"]
        try:
            existing = client.get(f"/types/key={key}")
        except ResourceNotFound:
            report.append(f"Custom type {key} is not there.")
            continue
        try:
            client.delete(f"/types/key={key}", version=existing["version"])
        except CommercetoolsAPIError as exc:
            if exc.code != "ReferenceExists":
                raise
            report.append(f"Kept custom type {key}: resources still use it.")
            continue
        report.append(f"Deleted custom type {key}.")
    return report


def type_has_field(client: CommercetoolsClient, type_id: str, field: str) -> bool:
    """Whether the custom type ``type_id`` defines ``field``."""
    definitions = client.get(f"/types/{segment(type_id)}").get("fieldDefinitions") or []
    return any(isinstance(d, dict) and d.get("name") == field for d in definitions)
