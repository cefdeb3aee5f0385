"""The shop's handle on the connector: ``psp`` reads the current app's platform and Stripe
gateway (see :class:`flask_psp_connector.PSPConnector`); ``create_app`` registers it."""

from __future__ import annotations

from flask_psp_connector import PSPConnector

#: Unbound until ``create_app``: its properties read the app of the current request.
psp = PSPConnector()
