"""Sandbox mode: an app takes payments with no Stripe account and no internet, against
the local Stripe double (needs the ``sandbox`` extra).

:func:`sandbox_config` starts the double and registers the app's webhook endpoint with
it, signed with ``STRIPE_WEBHOOK_SIGNING_SECRET`` when one is given (so events signed
by anyone who knows it, e.g. ``stripe trigger`` through the double, are accepted) or
with a generated secret; it yields the configuration to start the app with::

    with sandbox_config("http://127.0.0.1:5000") as config:
        app.config.update(config)  # before PSPConnector(app)
        app.run(port=5000)

With ``PSP_SANDBOX`` set (the configuration does), the connector serves the stand-in for
Stripe.js at ``url_for("psp_assets.static", filename="sandbox/stripe.js")`` (pages load
it instead of ``https://js.stripe.com/v3/``) and registers the blueprint below: the
sandbox's stand-in for the part of api.stripe.com that Stripe.js calls from the browser,
authenticated, as Stripe.js is, by the publishable key and the PaymentIntent's client
secret (or the CustomerSession's client secret), never by cookies, and open to every
origin (CORS), so a storefront served elsewhere can pay. Each call is passed to the
double with the sandbox's secret key; the double decides declines, 3D Secure and
disputes from Stripe's test cards. Never registered outside sandbox mode.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
from flask import Blueprint, Flask, Response, jsonify, request

from flask_psp_connector.state import connector_state
from flask_psp_connector.testing import SANDBOX_PUBLISHABLE_KEY, SANDBOX_SECRET_KEY, running_stripe_double
from flask_psp_connector.webhooks.events import HANDLED_EVENTS

SECRET_KEY, PUBLISHABLE_KEY = SANDBOX_SECRET_KEY, SANDBOX_PUBLISHABLE_KEY

#: Signed-in customers may save cards, see them again and remove them.
SAVED_METHODS_FEATURES = {"payment_method_save": "enabled", "payment_method_redisplay": "enabled",
                          "payment_method_remove": "enabled"}

#: What the Stripe.js stand-in may send when confirming, as Stripe.js does.
_CONFIRM_FIELDS = ("payment_method", "return_url", "setup_future_usage")


@contextmanager
def sandbox_config(app_url: str, *, name: str = "app", signing_secret: str | None = None) -> Iterator[dict[str, Any]]:
    """Start the local Stripe double for an app served at ``app_url`` and yield the
    configuration of sandbox mode: the double's keys and API base, and the double's
    events sent (as registration ``name``) to the app's webhook endpoint, signed with
    ``signing_secret`` (default: ``STRIPE_WEBHOOK_SIGNING_SECRET`` from the environment,
    else a fresh one).
    """
    secret = signing_secret or os.environ.get("STRIPE_WEBHOOK_SIGNING_SECRET") or f"whsec_{secrets.token_hex(16)}"
    with running_stripe_double() as api_base:
        # During a rotation the setting lists several secrets (comma-separated); one signature is enough.
        register_webhooks(api_base, name, f"{app_url.rstrip('/')}/stripe/webhooks", secret.split(",")[0].strip())
        yield {
            "PSP_SANDBOX": True,
            "STRIPE_API_BASE": api_base,
            "STRIPE_SECRET_KEY": SECRET_KEY,
            "STRIPE_PUBLISHABLE_KEY": PUBLISHABLE_KEY,
            "STRIPE_WEBHOOK_SIGNING_SECRET": secret,
            "STRIPE_SAVED_PAYMENT_METHODS_CONFIG": json.dumps(SAVED_METHODS_FEATURES),
        }


def register_webhooks(api_base: str, name: str, url: str, secret: str) -> None:
    """Have the double sign the events the connector handles (those ``flask psp
    post-deploy`` subscribes to at Stripe) with ``secret`` and post them to ``url``."""
    hook = {"url": url, "secret": secret, "events": list(HANDLED_EVENTS)}
    requests.post(f"{api_base}/_config/webhooks/{name}", json=hook, timeout=10).raise_for_status()


def trigger_command(api_base: str, event: str = "payment_intent.succeeded") -> str:
    """The Stripe CLI command that makes the double send ``event`` to the shop (the
    project's own copy of the CLI when ``npm install`` put one in ``node_modules``)."""
    local = os.path.join("node_modules", ".bin", "stripe")
    return f"{local if os.path.exists(local) else 'stripe'} trigger {event} --api-base {api_base} --api-key {SECRET_KEY}"


def init_sandbox(app: Flask) -> None:
    """Register the sandbox Stripe API on ``app`` (the connector does with ``PSP_SANDBOX``);
    it forwards to ``STRIPE_API_BASE``, the double. It is authenticated like Stripe.js, by
    the publishable key and a client secret, so it is exempt from a CSRF protection that
    is already set up (and listed by ``PSPConnector.api_blueprints`` for one set up later)."""
    blueprint = sandbox_blueprint()
    app.register_blueprint(blueprint)
    csrf = app.extensions.get("csrf")
    if csrf is not None:
        csrf.exempt(blueprint)


def sandbox_blueprint() -> Blueprint:
    """A new blueprint of the sandbox's stand-in for the Stripe API Stripe.js calls."""
    blueprint = Blueprint("sandbox", __name__, url_prefix="/sandbox/stripe/v1")
    blueprint.after_request(_open_to_every_origin)
    blueprint.get("/payment_intents/<intent_id>")(retrieve)
    blueprint.post("/payment_intents/<intent_id>/confirm")(confirm)
    blueprint.get("/elements/sessions")(elements_session)
    blueprint.post("/payment_intents/<intent_id>/_authenticate")(authenticate)
    return blueprint


def _open_to_every_origin(response: Response) -> Response:
    # Credentials are never read here (no cookies), so any storefront origin may call.
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Access-Control-Allow-Headers"] = "Content-Type"
    response.headers["Access-Control-Allow-Methods"] = "GET, POST"
    return response


def _error(status: int, message: str, *, type_: str = "invalid_request_error", **fields: Any) -> Response:
    response = jsonify({"error": {"type": type_, "message": message, **fields}})
    response.status_code = status
    return response


def _double(method: str, path: str, data: Any = None, params: Any = None) -> requests.Response:
    settings = connector_state().settings
    return requests.request(method, f"{settings['STRIPE_API_BASE']}/v1{path}", data=data, params=params,
                            auth=(settings["STRIPE_SECRET_KEY"], ""), timeout=10)


def _publishable_key_ok(fields: Any) -> bool:
    settings = connector_state().settings
    return hmac.compare_digest(str(fields.get("key", "")), settings["STRIPE_PUBLISHABLE_KEY"])


def _authorized_intent(intent_id: str, fields: Any) -> dict[str, Any] | Response:
    """The PaymentIntent, if the caller holds the publishable key and its client secret."""
    if not _publishable_key_ok(fields):
        return _error(401, "Invalid API Key provided.")
    found = _double("GET", f"/payment_intents/{intent_id}")
    if found.status_code != 200:
        return _error(404, f"No such payment_intent: '{intent_id}'", code="resource_missing")
    intent: dict[str, Any] = found.json()
    if not hmac.compare_digest(str(fields.get("client_secret", "")), intent["client_secret"]):
        return _error(400, "The client_secret provided does not match the client_secret associated with the PaymentIntent.")
    return intent


def _forwarded(answer: requests.Response) -> Response:
    response = jsonify(answer.json())
    response.status_code = answer.status_code
    return response


def retrieve(intent_id: str) -> Any:
    """``stripe.retrievePaymentIntent(clientSecret)``."""
    intent = _authorized_intent(intent_id, request.args)
    return intent if isinstance(intent, Response) else jsonify(intent)


def confirm(intent_id: str) -> Any:
    """``stripe.confirmPayment``: the double confirms with the card (``payment_method_data``,
    billing details included) or the saved ``payment_method``, and decides the outcome."""
    intent = _authorized_intent(intent_id, request.form)
    if isinstance(intent, Response):
        return intent
    data = [(key, value) for key, value in request.form.items(multi=True)
            if key in _CONFIRM_FIELDS or key.startswith("payment_method_data[")]
    return _forwarded(_double("POST", f"/payment_intents/{intent_id}/confirm", data))


def elements_session() -> Any:
    """What a CustomerSession client secret lets the Payment Element show (its features
    and the customer's saved cards), looked up at the double by that secret."""
    if not _publishable_key_ok(request.args):
        return _error(401, "Invalid API Key provided.")
    secret = request.args.get("customer_session_client_secret", "")
    return _forwarded(_double("GET", "/elements/sessions", params={"customer_session_client_secret": secret}))


def authenticate(intent_id: str) -> Any:
    """Pass or fail the 3D Secure challenge the stand-in showed."""
    intent = _authorized_intent(intent_id, request.form)
    if isinstance(intent, Response):
        return intent
    success = request.form.get("success") == "true"
    return _forwarded(_double("POST", f"/payment_intents/{intent_id}/_authenticate",
                              {"client_secret": intent["client_secret"], "success": str(success).lower()}))
