"""The Flask extension object."""

from __future__ import annotations

import os
from typing import Any

import click
from flask import Blueprint, Flask, request, url_for
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from flask_psp_connector.auth.introspection import Introspector, RemoteIntrospector
from flask_psp_connector.auth.jwks import JWKSCache
from flask_psp_connector.auth.token_route import token_blueprint
from flask_psp_connector.auth.token_server import ClientRegistry, make_authorization_server
from flask_psp_connector.cli import psp_commands
from flask_psp_connector.domain.model import CheckoutSession
from flask_psp_connector.domain.payment import Payment
from flask_psp_connector.errors import ConfigurationError, PSPError
from flask_psp_connector.gateways.commercelayer import routes as commercelayer
from flask_psp_connector.gateways.hantera import routes as hantera
from flask_psp_connector.http.cors import storefront_cors
from flask_psp_connector.http.docs import docs_blueprint
from flask_psp_connector.http.errors import UpstreamErrors
from flask_psp_connector.http.guards import reject_hostile_input
from flask_psp_connector.http.openapi import Api, connector_api
from flask_psp_connector.observability.monitoring import init_monitoring
from flask_psp_connector.options import connector_options
from flask_psp_connector.platforms.commercetools.platform import CommercetoolsPlatform
from flask_psp_connector.platforms.embedded.database import Database
from flask_psp_connector.platforms.embedded.migrate import upgrade_store
from flask_psp_connector.platforms.embedded.store import LocalPlatform
from flask_psp_connector.platforms.embedded.timeouts import apply_database_timeouts
from flask_psp_connector.ports import CommercePlatform
from flask_psp_connector.processor.payments import confirm_payment
from flask_psp_connector.processor.routes import processor_blueprint
from flask_psp_connector.processor.schemas import ErrorResponseSchema
from flask_psp_connector.processor.settlement import settle_payment
from flask_psp_connector.settings import Settings, load_settings
from flask_psp_connector.signals import Sender
from flask_psp_connector.state import EXTENSION_KEY, ConnectorState, connector_state
from flask_psp_connector.stripe.adapter import StripeGateway
from flask_psp_connector.version import __version__
from flask_psp_connector.webhooks.route import webhooks_blueprint


class PSPConnector:
    """Stripe payments for a commerce platform, as a Flask extension.

    ``PSPConnector(app)`` or ``psp = PSPConnector(); psp.init_app(app)`` registers the
    processor routes (upstream's paths under ``PSP_URL_PREFIX``), ``/openapi.json``, the
    ``flask psp`` commands and, for the embedded store, ``/oauth/token``.

    Configuration keys are documented in :mod:`flask_psp_connector.settings`; the most
    used are ``STRIPE_SECRET_KEY``, ``STRIPE_PUBLISHABLE_KEY``, ``STRIPE_CAPTURE_METHOD``,
    ``STRIPE_APPEARANCE_PAYMENT_ELEMENT``, ``MERCHANT_RETURN_URL``, ``PSP_URL_PREFIX`` and
    ``PSP_DATABASE_URL``. flask-smorest's keys take the ``PSP_`` prefix
    (``PSP_OPENAPI_URL_PREFIX``, ``PSP_OPENAPI_JSON_PATH``); ``/docs`` shows the document in
    Swagger UI served from the app itself.

    :param app: the app to register on now, if any.
    :param platform: a commerce platform to use instead of the embedded store.
    :param stripe: a Stripe gateway to use instead of one built from the settings.
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        platform: CommercePlatform | None = None,
        stripe: StripeGateway | None = None,
    ) -> None:
        self._platform = platform
        self._stripe = stripe
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Validate the configuration and register the connector on ``app``.

        :raises RuntimeError: if a connector is already registered on ``app``.
        :raises ConfigurationError: naming the key whose value is invalid.
        """
        if EXTENSION_KEY in app.extensions:
            raise RuntimeError("A PSPConnector is already registered on this Flask app.")
        # A command (``flask psp ...``) may run without Stripe: the ones that need it say so.
        settings = load_settings(app.config, testing=app.testing or click.get_current_context(silent=True) is not None)
        platform, clients, database = self._platform, None, None
        if platform is None and settings["PSP_PLATFORM"] == "commercetools":
            platform = CommercetoolsPlatform.from_settings(settings)
        if platform is None:
            platform = LocalPlatform(_database(app, settings), session_ttl=settings["PSP_SESSION_TTL"])
        if isinstance(platform, LocalPlatform):
            database = platform.database
            if not settings["CTP_AUTH_URL"]:
                clients = ClientRegistry(database, token_ttl=settings["PSP_TOKEN_TTL"])
        state = ConnectorState(
            settings=settings,
            options=connector_options(settings),
            platform=platform,
            stripe=self._stripe or _stripe_gateway(settings),
            jwks=JWKSCache(settings["CTP_JWKS_URL"]),
            introspector=_introspector(settings, clients),
            clients=clients,
            api=_api(app, settings),
            notify=Sender(app),
            database=database,
        )
        app.extensions[EXTENSION_KEY] = state

        prefix = settings["PSP_URL_PREFIX"] or None
        state.api.register_blueprint(processor_blueprint(), url_prefix=prefix)
        state.api.register_blueprint(webhooks_blueprint(), url_prefix=prefix)
        if clients is not None:
            state.authorization_server = make_authorization_server(app, clients)
            state.api.register_blueprint(token_blueprint(), url_prefix=prefix)
        self._init_gateways(app, state)
        app.register_blueprint(_assets_blueprint(), url_prefix=prefix)
        app.register_blueprint(docs_blueprint(), url_prefix=prefix)
        if settings["PSP_SANDBOX"]:
            from flask_psp_connector.sandbox import init_sandbox  # sandbox mode only

            init_sandbox(app)
        init_monitoring(app, _connector_request, settings["PSP_METRICS_PATH"], settings["PSP_METRICS_TOKEN"])
        app.register_error_handler(HTTPException, _handle_routing_error)
        app.before_request(_limit_body)
        app.cli.add_command(psp_commands())

    @staticmethod
    def _init_gateways(app: Flask, state: ConnectorState) -> None:
        """Register the configured external gateways, their claims on Stripe events and their receivers."""
        settings, claims = state.settings, []
        if not (settings["COMMERCELAYER_SHARED_SECRET"] or settings["HANTERA_API_URL"]):
            return
        if state.database is None:
            state.database = _database(app, settings)
        store = state.database
        if settings["COMMERCELAYER_SHARED_SECRET"]:
            state.commercelayer = commercelayer.init_gateway(state.api, store, state.stripe, settings)
            claims.append(state.commercelayer.settle_event)
            commercelayer.connect_callbacks(app, state.commercelayer, settings["COMMERCELAYER_SHARED_SECRET"])
        if settings["HANTERA_API_URL"]:
            state.hantera = hantera.init_gateway(state.api, store, state.stripe, settings)
            claims.append(state.hantera.settle_event)
        state.claims = tuple(claims)

    @property
    def platform(self) -> CommercePlatform:
        """The current app's commerce platform (the embedded store by default)."""
        return connector_state().platform

    @property
    def stripe(self) -> StripeGateway | None:
        """The current app's Stripe gateway."""
        return connector_state().stripe

    @property
    def processor_url(self) -> str:
        """The absolute base URL of the connector's routes for the current request: what a
        page gives ``psp-payment.js`` as ``data-processor-url``."""
        prefix: str = connector_state().settings["PSP_URL_PREFIX"]
        return request.url_root.rstrip("/") + prefix

    @property
    def stripe_js_url(self) -> str:
        """Where pages load Stripe.js from: Stripe's, or the stand-in in sandbox mode."""
        if connector_state().settings["PSP_SANDBOX"]:
            return url_for("psp_assets.static", filename="sandbox/stripe.js")
        return "https://js.stripe.com/v3/"

    def settle_payment(self, payment_id: str) -> Payment:
        """Place the order of a payment already recorded as succeeded, the way its webhook
        would (idempotent): only if it pays for its cart as the cart is now; otherwise it
        is marked stale and refunded or flagged (``PSP_STALE_PAYMENTS``).

        For shops that show an order before the webhook lands (a return or order page).

        :raises ResourceNotFound: if there is no such payment.
        """
        state = connector_state()
        return settle_payment(state.signalling_platform(), state.stripe, state.options.stale_policy, payment_id)

    def confirm_payment(self, cart_id: str, payment_id: str, payment_intent_id: str) -> str:
        """Record what Stripe says of a PaymentIntent the buyer confirmed and settle its
        payment, as ``/confirmPayments`` does (idempotent; signals are sent).

        For a shop's return URL, which Stripe's redirect reaches before the webhook.

        :returns: ``"approved"`` or ``"pending"`` (asynchronous settlement).
        :raises StalePayment: when it paid for a cart state the cart no longer has.
        :raises PSPError: when the PaymentIntent is not a paid one of this cart's payment.
        """
        state = connector_state()
        if state.stripe is None:
            raise ConfigurationError("STRIPE_SECRET_KEY", "is not set")
        return confirm_payment(state.signalling_platform(), state.stripe, CheckoutSession("", cart_id, None), payment_id,
                               payment_intent_id, stale_policy=state.options.stale_policy)

    @staticmethod
    def api_blueprints(app: Flask) -> list[Blueprint]:
        """The connector's API blueprints on ``app``: they authenticate with headers and
        signatures, not cookies, so a host app's CSRF protection should exempt them."""
        return [blueprint for name in _BLUEPRINTS if isinstance(blueprint := app.blueprints.get(name), Blueprint)]


_BLUEPRINTS = ("processor", "oauth", "webhooks", "commercelayer", "hantera", "sandbox")
_SIGNED_BLUEPRINTS = ("webhooks", "commercelayer")


def _assets_blueprint() -> Blueprint:
    """The browser modules (``psp-payment.js``...) any host page can load:
    ``url_for("psp_assets.static", filename="psp-payment.js")``."""
    return Blueprint("psp_assets", __name__, static_folder="static", static_url_path="/psp-assets")


def _current_settings() -> Settings:
    return connector_state().settings


def _database(app: Flask, settings: Settings) -> Database:
    url = settings["PSP_DATABASE_URL"] or app.config.get("DATABASE_URL") or os.environ.get("DATABASE_URL")
    database = Database.from_url(url or Database.default_url(app.instance_path),
                                 pool_size=settings["PSP_DATABASE_POOL_SIZE"])
    apply_database_timeouts(database.engine, lock_ms=settings["PSP_DATABASE_LOCK_TIMEOUT"],
                            statement_ms=settings["PSP_DATABASE_STATEMENT_TIMEOUT"],
                            idle_in_transaction_ms=settings["PSP_DATABASE_IDLE_IN_TRANSACTION_TIMEOUT"])
    if database.engine.dialect.name == "sqlite":
        upgrade_store(database)  # development convenience; PostgreSQL uses `flask psp init-db`
    return database


def _stripe_gateway(settings: Settings) -> StripeGateway | None:
    if not settings["STRIPE_SECRET_KEY"]:
        return None
    return StripeGateway(
        settings["STRIPE_SECRET_KEY"],
        api_base=settings["STRIPE_API_BASE"],
        timeout=settings["PSP_STRIPE_TIMEOUT"],
        max_network_retries=settings["PSP_STRIPE_MAX_NETWORK_RETRIES"],
        payment_method_types=settings["STRIPE_PAYMENT_METHOD_TYPES"],
    )


def _introspector(settings: Settings, clients: ClientRegistry | None) -> Introspector:
    if clients is None:
        return RemoteIntrospector(
            f"{settings['CTP_AUTH_URL']}/oauth/introspect", settings["CTP_CLIENT_ID"], settings["CTP_CLIENT_SECRET"]
        )
    return clients


def _api(app: Flask, settings: Settings) -> Api:
    prefix = settings["PSP_URL_PREFIX"]
    app.config.setdefault("PSP_OPENAPI_URL_PREFIX", prefix or "/")
    app.config.setdefault("PSP_OPENAPI_JSON_PATH", "openapi.json")
    api = connector_api(app, "flask-psp-connector", __version__, ErrorResponseSchema)
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    api.spec.components.security_scheme("basicAuth", {"type": "http", "scheme": "basic"})
    api.spec.components.security_scheme("sessionId", {"type": "apiKey", "in": "header", "name": "X-Session-Id"})
    return api


def _connector_request() -> bool:
    """Whether the request is addressed to the connector rather than to the host app."""
    if request.blueprint is not None:
        return request.blueprint in _BLUEPRINTS
    prefix = _current_settings()["PSP_URL_PREFIX"]
    if prefix:
        return request.path == prefix or request.path.startswith(prefix + "/")
    # With no prefix, an unroutable request is the connector's unless a browser asks for a page.
    return request.accept_mimetypes.best_match(["application/json", "text/html"]) != "text/html"


def _handle_routing_error(error: HTTPException) -> Any:
    if isinstance(error, PSPError) or not _connector_request():
        return error
    return storefront_cors(UpstreamErrors().http_exception(error))


def _limit_body() -> None:
    if request.blueprint in _BLUEPRINTS:
        limit = _current_settings()["PSP_MAX_BODY_BYTES"]
        request.max_content_length = limit
        if request.content_length is not None and request.content_length > limit:
            raise RequestEntityTooLarge()
        # Signed routes check their signature before reading the body (see their modules).
        reject_hostile_input(request, body=request.blueprint not in _SIGNED_BLUEPRINTS)
