"""What the connector keeps per app, and the typed accessor for it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app

from flask_psp_connector.auth.introspection import Introspector
from flask_psp_connector.auth.jwks import JWKSCache
from flask_psp_connector.auth.token_server import ClientRegistry
from flask_psp_connector.gateways.commercelayer.actions import CommerceLayerGateway
from flask_psp_connector.gateways.hantera.actions import HanteraGateway
from flask_psp_connector.gateways.store import GatewayStore
from flask_psp_connector.http.openapi import Api
from flask_psp_connector.options import ConnectorOptions
from flask_psp_connector.platforms.embedded.database import Database
from flask_psp_connector.ports import CommercePlatform
from flask_psp_connector.settings import Settings
from flask_psp_connector.signals import Sender
from flask_psp_connector.stripe.adapter import StripeGateway
from flask_psp_connector.webhooks.events import Claim, EventProcessor
from flask_psp_connector.webhooks.outcomes import SignallingPlatform

#: Where :class:`~flask_psp_connector.extension.PSPConnector` keeps its state on an app.
EXTENSION_KEY = "psp_connector"


@dataclass
class ConnectorState:
    """Everything the connector keeps per app, in ``app.extensions["psp_connector"]`` (read it with :func:`connector_state`)."""

    settings: Settings
    #: What the use cases are configured with, parsed once from ``settings``.
    options: ConnectorOptions
    platform: CommercePlatform
    stripe: StripeGateway | None
    jwks: JWKSCache
    introspector: Introspector
    clients: ClientRegistry | None
    api: Api
    authorization_server: Any = None
    commercelayer: CommerceLayerGateway[GatewayStore] | None = None
    hantera: HanteraGateway[GatewayStore] | None = None
    #: The embedded store's database (in commercetools mode, the external gateways' own), if any.
    database: Database | None = None
    #: The external gateways' claims on Stripe events (see :data:`~.webhooks.events.Claim`).
    claims: tuple[Claim, ...] = ()
    #: Sends the signals of :mod:`flask_psp_connector.signals` from this app.
    notify: Sender | None = None

    def event_processor(self) -> EventProcessor:
        """What turns this app's Stripe events into transactions and orders."""
        return EventProcessor(self.platform, self.stripe, self.claims,
                              stale_policy=self.options.stale_policy, notify=self.notify)

    def signalling_platform(self) -> CommercePlatform:
        """The platform, sending the signals of the changes recorded through it (for one request)."""
        return self.platform if self.notify is None else SignallingPlatform(self.platform, self.notify)


def connector_state(app: Flask | None = None) -> ConnectorState:
    """The connector's state on ``app`` (the current app by default).

    :raises RuntimeError: if the connector is not registered on the app.
    """
    state = (app or current_app).extensions.get(EXTENSION_KEY)
    if not isinstance(state, ConnectorState):
        raise RuntimeError("PSPConnector is not registered on this app (PSPConnector(app) or init_app).")
    return state
