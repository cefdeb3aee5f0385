"""A small storefront that takes payments through flask-psp-connector.

It uses only the extension's public API, as any host app would: the embedded store
for carts and orders, checkout sessions for the browser module, and the payment use
cases for the back office.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
from flask import Flask, g
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from demo_shop.account_pages import accounts_blueprint
from demo_shop.accounts import signed_in
from demo_shop.admin import admin_blueprint
from demo_shop.cart import current_cart
from demo_shop.connector import psp
from demo_shop.express import express_blueprint
from demo_shop.money import format_money
from demo_shop.pricing import country_name
from demo_shop.progress import words
from demo_shop.security import init_security
from demo_shop.tables import create_tables
from demo_shop.throttle import DEFAULT_LIMITS, init_throttle
from demo_shop.views import shop_blueprint
from demo_shop.wellknown import wellknown_blueprint
from flask_psp_connector import ConfigurationError, PSPConnector, PSPError
from flask_psp_connector.observability.logs import configure_logging
from flask_psp_connector.state import connector_state

log = logging.getLogger("demo_shop")

#: Keys the shop itself reads from the environment when they are not in the config.
_SHOP_KEYS = (
    "SECRET_KEY", "SHOP_ADMIN_PASSWORD", "SESSION_COOKIE_SECURE", "SHOP_PROXY_HOPS",
    "SHOP_MAX_BODY_BYTES", "RATELIMIT_STORAGE_URI", *DEFAULT_LIMITS,
)
#: Largest request body the shop's own routes read (its forms and JSON are a few KiB).
_MAX_BODY_BYTES = 64 * 1024
_STATIC = Path(__file__).resolve().parent.parent / "static"


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the shop.

    Configuration, from ``test_config`` or else the environment:

    ``SECRET_KEY``
        Signs the session (which holds the cart id). Required to serve the shop in
        production; in testing, sandbox mode, a local run (``SHOP_LOCAL_RUN``, set by
        ``python -m demo_shop``) and ``flask`` commands a development key is generated
        once and kept in the instance folder (with a warning), so that several workers
        share it.
    ``SHOP_ADMIN_PASSWORD``
        Password of the back office at ``/admin``; the back office is disabled
        while it is unset.
    ``PSP_SANDBOX``
        The connector's sandbox mode (set by :func:`flask_psp_connector.sandbox.sandbox_config`,
        which ``python -m demo_shop`` uses without Stripe keys): payments go to the local
        Stripe double, a banner says so on every page and the payment page loads the
        connector's Stripe.js stand-in instead of ``js.stripe.com``.
    ``SESSION_COOKIE_SECURE``
        Send the session cookie over HTTPS only (default true; turn it off for
        plain-HTTP local runs).
    ``SHOP_PROXY_HOPS``
        How many proxies in front of the app append to ``X-Forwarded-For`` and set
        ``X-Forwarded-Proto`` (default 0; 1 behind a platform router such as Heroku's).
        The client address the rate limits count by, and https, are read from them.
    ``SHOP_MAX_BODY_BYTES``
        Largest request body of the shop's own routes (default 64 KiB; the connector's
        routes have ``PSP_MAX_BODY_BYTES``).
    ``RATELIMIT_STORAGE_URI``, ``SHOP_SIGN_IN_RATE_LIMIT``, ``SHOP_SIGN_IN_ACCOUNT_RATE_LIMIT``,
    ``SHOP_SIGN_UP_RATE_LIMIT``, ``SHOP_ADMIN_LOGIN_RATE_LIMIT``
        Where the rate-limit counters live (``memory://`` by default, ``redis://...``
        for several workers or dynos) and the limits (see :mod:`demo_shop.throttle`).
    ``ALLOWED_ORIGINS``
        The connector's CORS allow-list; the shop defaults it to ``self``, its own origin.

    The connector reads its own keys (``STRIPE_SECRET_KEY``,
    ``STRIPE_PUBLISHABLE_KEY``, ``STRIPE_WEBHOOK_SIGNING_SECRET``, ``PSP_DATABASE_URL``,
    ...; see :mod:`flask_psp_connector.settings`). Unlike a host app's default, the shop
    serves its Prometheus metrics at ``/metrics`` unless ``PSP_METRICS_PATH`` says otherwise
    (``PSP_METRICS_TOKEN`` guards them).

    :raises ConfigurationError: when ``SECRET_KEY`` is missing in production.
    """
    app = Flask("demo_shop", static_folder=str(_STATIC), instance_relative_config=True)
    app.config.update(
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SECRET_KEY=None,
    )
    for key in _SHOP_KEYS:
        if key in os.environ:
            app.config[key] = os.environ[key]
    if test_config:
        app.config.update(test_config)
    app.config["SESSION_COOKIE_SECURE"] = _flag(app.config["SESSION_COOKIE_SECURE"])
    app.config["MAX_CONTENT_LENGTH"] = int(app.config.get("SHOP_MAX_BODY_BYTES") or _MAX_BODY_BYTES)
    if not (app.config.get("ALLOWED_ORIGINS") or os.environ.get("ALLOWED_ORIGINS")):
        app.config["ALLOWED_ORIGINS"] = "self"  # the browser modules run on the shop's own pages
    hops = int(app.config.get("SHOP_PROXY_HOPS") or 0)
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    sandbox = _flag(app.config.get("PSP_SANDBOX", os.environ.get("PSP_SANDBOX", False)))
    if not app.config.get("SECRET_KEY"):
        # A command (``flask ... psp``) or a local run (``make run``) may use a development
        # key; a served shop (gunicorn) must be given one that every worker shares.
        command = click.get_current_context(silent=True) is not None  # commands use no sessions
        if not (app.testing or sandbox or command or _flag(app.config.get("SHOP_LOCAL_RUN", False))):
            raise ConfigurationError("SECRET_KEY", "required to serve the shop; set it to a long random value.")
        if not (app.testing or command or sandbox):
            log.warning("SECRET_KEY is not set: using a development key kept in %s. Set SECRET_KEY in production.",
                        app.instance_path)
        app.config["SECRET_KEY"] = _instance_secret(Path(app.instance_path))

    app.config.setdefault("PSP_METRICS_PATH", os.environ.get("PSP_METRICS_PATH", "/metrics"))
    csrf = CSRFProtect(app)
    psp.init_app(app)
    database = connector_state(app).database
    if database is not None:
        create_tables(database)
    if not app.testing:
        # The shop shows the connector's INFO lines (payments, events, their outcome).
        configure_logging(connector_state(app).settings["PSP_LOG_FORMAT"])
    for blueprint in PSPConnector.api_blueprints(app):
        csrf.exempt(blueprint)

    init_security(app, sandbox=sandbox)
    app.register_blueprint(shop_blueprint())
    app.register_blueprint(express_blueprint())
    app.register_blueprint(accounts_blueprint())
    app.register_blueprint(admin_blueprint())
    app.register_blueprint(wellknown_blueprint())
    init_throttle(app)
    app.jinja_env.filters["money"] = format_money
    app.jinja_env.filters["country_name"] = country_name
    app.jinja_env.filters["words"] = words
    app.context_processor(lambda: {"sandbox": sandbox, "cart_count": _cart_count, "signed_in": signed_in})
    return app


def _cart_count() -> int:
    """Units in the session's cart, read once per request (for the header)."""
    if "cart_count" not in g:
        try:
            cart = current_cart()
        except PSPError:  # an error page must render even when the store is down
            cart = None
        g.cart_count = sum(item.quantity for item in cart.line_items) if cart else 0
    return g.cart_count


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("", "0", "false", "no", "off")
    return bool(value)


def _instance_secret(instance: Path) -> str:
    """The instance folder's secret key, created on first use by whichever worker is first.

    The key is written to a private file first and then linked into place, so no
    worker ever reads a half-written key and a second writer simply loses the race.
    """
    instance.mkdir(parents=True, exist_ok=True)
    path = instance / "secret_key"
    if not path.exists():
        draft = instance / f".secret_key.{os.getpid()}.{secrets.token_hex(4)}"
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_hex(32))
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()
