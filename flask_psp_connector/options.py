"""What the use cases are configured with: typed, parsed once from the settings.

The extension builds one :class:`ConnectorOptions` per app (see
:func:`flask_psp_connector.settings.connector_options`); use cases never read a
configuration key themselves.
"""

from __future__ import annotations

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
    app from the settings (:func:`flask_psp_connector.settings.connector_options`).
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
