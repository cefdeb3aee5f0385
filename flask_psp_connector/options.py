"""What the use cases are configured with: typed, parsed once from the settings.

The extension builds one :class:`ConnectorOptions` per app (see
:func:`connector_options`); use cases never read a
configuration key themselves.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask_psp_connector.domain.behavior import Behavior

#: ``stale_policy`` values: refund (or release) a stale payment, or leave it flagged.
STALE_REFUND, STALE_FLAG = "refund", "flag"


@dataclass(frozen=True, slots=True)
class ConnectorOptions:
    """The checkout and payment choices of one app.

    JSON-valued options (layout, appearances, element options) are kept as the validated
    text they were given, since they are handed to the browser unchanged. Built once per
    app from the settings (:func:`connector_options`).
    """

    #: The global behaviour, before any rule: every cart gets it unless a rule says otherwise.
    behavior: Behavior
    #: Per-cart overrides (``STRIPE_PAYMENT_BEHAVIOR_RULES``), by country or store key.
    behavior_rules: Mapping[str, Mapping[str, str]]
    #: Written to every PaymentIntent's metadata (``ct_project_key``).
    project_key: str
    #: ``paymentMethodInfo.paymentInterface`` of the payments we create.
    payment_interface: str
    #: Manual-capture PaymentIntents request multicapture; partial captures keep the rest.
    multicapture: bool
    #: What becomes of a payment that pays for no order of its cart: ``refund`` or ``flag``.
    stale_policy: str
    #: Payment Element layout (JSON).
    layout: str
    #: Payment Element options (JSON) handed to the browser.
    payment_element_options: str
    payment_element_appearance: str | None
    express_checkout_appearance: str | None
    #: Express Checkout Element options (JSON), or none.
    express_element_options: str | None
    #: The CustomerSession ``payment_element.features`` (saved payment methods).
    saved_methods_features: Mapping[str, Any]
    #: The environment name reported to the browser enabler.
    environment: str
    publishable_key: str
    #: Seconds the status report waits for its checks.
    health_check_timeout: float


def connector_options(settings: Mapping[str, Any]) -> ConnectorOptions:
    """The typed options the use cases take, from validated settings (see :func:`load_settings`)."""
    return ConnectorOptions(
        behavior=Behavior(
            flow_type=settings["STRIPE_PAYMENT_FLOW"],
            capture_method=settings["STRIPE_CAPTURE_METHOD"],
            setup_future_usage=settings["STRIPE_PAYMENT_INTENT_SETUP_FUTURE_USAGE"],
            collect_billing_address=settings["STRIPE_COLLECT_BILLING_ADDRESS"],
        ),
        behavior_rules=settings["STRIPE_PAYMENT_BEHAVIOR_RULES"],
        project_key=settings["CTP_PROJECT_KEY"],
        payment_interface=settings["PAYMENT_INTERFACE"],
        multicapture=settings["STRIPE_ENABLE_MULTI_OPERATIONS"],
        stale_policy=settings["PSP_STALE_PAYMENTS"],
        layout=settings["STRIPE_LAYOUT"],
        payment_element_options=settings["STRIPE_BEHAVIOR_PAYMENT_ELEMENT"],
        payment_element_appearance=settings["STRIPE_APPEARANCE_PAYMENT_ELEMENT"],
        express_checkout_appearance=settings["STRIPE_APPEARANCE_EXPRESS_CHECKOUT"],
        express_element_options=settings["STRIPE_EXPRESS_ELEMENT_OPTIONS"],
        saved_methods_features=json.loads(settings["STRIPE_SAVED_PAYMENT_METHODS_CONFIG"] or "{}"),
        environment=settings["MOCK_ENVIRONMENT"],
        publishable_key=settings["STRIPE_PUBLISHABLE_KEY"],
        health_check_timeout=settings["HEALTH_CHECK_TIMEOUT"] / 1000,
    )
