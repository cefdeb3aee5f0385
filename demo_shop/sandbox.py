"""Sandbox mode's Stripe API for the browser (the shop runs with no Stripe keys).

The sandbox stand-in for Stripe.js (``static/sandbox/stripe.js``) calls these routes the
way Stripe.js calls api.stripe.com: authenticated by the publishable key and the
PaymentIntent's client secret. They forward to the local Stripe double (localstripe)
with the sandbox's secret key, filling in what the double lacks:

- confirming with ``payment_method_data`` (the double only confirms a PaymentIntent that
  already has a payment method, so one is created and attached first);
- the generic decline card 4000 0000 0000 0002 declines the way Stripe documents it
  (``card_declined``, the PaymentIntent stays ``requires_payment_method`` and can be
  confirmed again), which the double cannot do once it has recorded a failed charge;
- what a CustomerSession lets the Payment Element do: list the customer's saved cards
  (``GET elements/sessions``; the double keeps no CustomerSessions, so only to the
  shop's signed-in customer), pay with one of them (only one attached to the
  PaymentIntent's customer), and save a new card: confirmed with
  ``setup_future_usage`` (and the method's ``allow_redisplay`` set to ``always``), it is
  attached to the customer once the payment succeeds.

Never registered outside sandbox mode.
"""

from __future__ import annotations

import hmac
import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
from flask import Blueprint, Flask, Response, current_app, jsonify, request

from flask_psp_connector.stripe_double import running_stripe_double

DECLINED_CARD = "4000000000000002"
_CONFIRMABLE = ("requires_payment_method", "requires_confirmation")
_SUCCEEDED = ("succeeded", "requires_capture", "processing")
#: What a Payment Element shows of a saved card.
_CARD_DISPLAY = ("brand", "last4", "exp_month", "exp_year")

sandbox_bp = Blueprint("sandbox", __name__, url_prefix="/sandbox/stripe/v1")


#: Signed-in customers may save cards, see them again and remove them.
SAVED_METHODS_FEATURES = {"payment_method_save": "enabled", "payment_method_redisplay": "enabled",
                          "payment_method_remove": "enabled"}

#: The events the Stripe double can send (it sends no others).
DOUBLE_EVENTS = ("payment_intent.succeeded", "payment_intent.payment_failed")


@contextmanager
def sandbox_config(shop_url: str, *, name: str = "demo_shop") -> Iterator[dict[str, Any]]:
    """Start the local Stripe double for a shop served at ``shop_url`` and yield the
    configuration of sandbox mode: the double's keys and API base, and its webhooks
    registered (as ``name``) to the shop's endpoint with a fresh signing secret.
    """
    with running_stripe_double() as api_base:
        secret = f"whsec_{secrets.token_hex(16)}"
        register_webhooks(api_base, name, f"{shop_url.rstrip('/')}/stripe/webhooks", secret)
        yield {
            "SHOP_SANDBOX_API": api_base,
            "STRIPE_API_BASE": api_base,
            "STRIPE_SECRET_KEY": "sk_test_sandbox",
            "STRIPE_PUBLISHABLE_KEY": "pk_test_sandbox",
            "STRIPE_PAYMENT_METHOD_TYPES": "card",
            "STRIPE_WEBHOOK_SIGNING_SECRET": secret,
            "STRIPE_SAVED_PAYMENT_METHODS_CONFIG": json.dumps(SAVED_METHODS_FEATURES),
        }


def register_webhooks(api_base: str, name: str, url: str, secret: str) -> None:
    """Have the double sign its events with ``secret`` and post them to ``url``."""
    hook = {"url": url, "secret": secret, "events": list(DOUBLE_EVENTS)}
    requests.post(f"{api_base}/_config/webhooks/{name}", json=hook, timeout=10).raise_for_status()


def init_sandbox(app: Flask) -> None:
    """Register the sandbox Stripe API on ``app``; it forwards to ``STRIPE_API_BASE``, the double."""
    app.register_blueprint(sandbox_bp)
    csrf = app.extensions.get("csrf")
    if csrf is not None:
        csrf.exempt(sandbox_bp)  # authenticated like Stripe.js: publishable key + client secret


def _error(status: int, message: str, *, type_: str = "invalid_request_error", **fields: Any) -> Response:
    response = jsonify({"error": {"type": type_, "message": message, **fields}})
    response.status_code = status
    return response


def _double(method: str, path: str, data: dict[str, Any] | None = None) -> requests.Response:
    settings = current_app.extensions["psp_connector"].settings
    return requests.request(method, f"{settings['STRIPE_API_BASE']}/v1{path}", data=data,
                            auth=(settings["STRIPE_SECRET_KEY"], ""), timeout=10)


def _authorized_intent(intent_id: str, fields: Any) -> dict[str, Any] | Response:
    """The PaymentIntent, if the caller holds the publishable key and its client secret."""
    settings = current_app.extensions["psp_connector"].settings
    if not hmac.compare_digest(str(fields.get("key", "")), settings["STRIPE_PUBLISHABLE_KEY"]):
        return _error(401, "Invalid API Key provided.")
    found = _double("GET", f"/payment_intents/{intent_id}")
    if found.status_code != 200:
        return _error(404, f"No such payment_intent: '{intent_id}'", code="resource_missing")
    intent = found.json()
    if not hmac.compare_digest(str(fields.get("client_secret", "")), intent["client_secret"]):
        return _error(400, "The client_secret provided does not match the client_secret associated with the PaymentIntent.")
    return intent


def _forwarded(answer: requests.Response) -> Response:
    """The double's answer, with declines typed as Stripe types them."""
    body = answer.json()
    error = body.get("error")
    if error and error.get("code") == "card_declined":
        error["type"] = "card_error"
    response = jsonify(body)
    response.status_code = answer.status_code
    return response


@sandbox_bp.get("/payment_intents/<intent_id>")
def retrieve(intent_id: str) -> Any:
    """``stripe.retrievePaymentIntent(clientSecret)``."""
    intent = _authorized_intent(intent_id, request.args)
    return intent if isinstance(intent, Response) else jsonify(intent)


@sandbox_bp.post("/payment_intents/<intent_id>/confirm")
def confirm(intent_id: str) -> Any:
    """Confirm with the card the shopper typed into the Payment Element."""
    intent = _authorized_intent(intent_id, request.form)
    if isinstance(intent, Response):
        return intent
    if intent["status"] not in _CONFIRMABLE:
        return _error(400, f"This PaymentIntent's status is {intent['status']}; it cannot be confirmed.",
                      code="payment_intent_unexpected_state", payment_intent=intent)
    saved = request.form.get("payment_method", "")
    if saved:
        if not _belongs_to_customer(saved, intent):
            return _error(400, "The provided PaymentMethod does not belong to this PaymentIntent's customer.",
                          code="payment_method_unexpected_state", payment_intent=intent)
        return _confirm_with(intent, saved, save=False)
    card = {key: request.form.get(f"payment_method_data[card][{key}]", "") for key in ("number", "exp_month", "exp_year", "cvc")}
    if card["number"] == DECLINED_CARD:
        return _error(402, "Your card was declined.", type_="card_error", code="card_declined",
                      decline_code="generic_decline", payment_intent=intent)
    # Saving, as Stripe.js does it: the new method may be shown again ("always") and
    # the PaymentIntent sets it up for future use; the double attaches it on success.
    save = bool(request.form.get("setup_future_usage"))
    fields = {"type": "card", **{f"card[{k}]": v for k, v in card.items()}}
    method = _double("POST", "/payment_methods", {**fields, **({"allow_redisplay": "always"} if save else {})})
    if method.status_code != 200:
        return _forwarded(method)
    return _confirm_with(intent, method.json()["id"], save=save)


def _belongs_to_customer(payment_method_id: str, intent: dict[str, Any]) -> bool:
    """Stripe confirms with a saved method only if it is attached to the intent's customer."""
    if not intent.get("customer") or not payment_method_id.startswith("pm_"):
        return False
    found = _double("GET", f"/payment_methods/{payment_method_id}")
    return found.status_code == 200 and found.json().get("customer") == intent["customer"]


def _confirm_with(intent: dict[str, Any], payment_method_id: str, *, save: bool) -> Response:
    """Put the method on the PaymentIntent, confirm it, and save the method if asked."""
    usage = {"setup_future_usage": request.form["setup_future_usage"]} if save else {}
    updated = _double("POST", f"/payment_intents/{intent['id']}", {"payment_method": payment_method_id, **usage})
    if updated.status_code != 200:
        return _forwarded(updated)
    confirmed = _double("POST", f"/payment_intents/{intent['id']}/confirm")
    if save and confirmed.status_code == 200:
        _attach_on_success(confirmed.json())
    return _forwarded(confirmed)


def _attach_on_success(intent: dict[str, Any]) -> None:
    """Stripe attaches the method of a PaymentIntent confirmed with ``setup_future_usage``
    to its customer once the payment succeeds."""
    if intent.get("customer") and intent.get("payment_method") and intent.get("status") in _SUCCEEDED:
        _double("POST", f"/payment_methods/{intent['payment_method']}/attach", {"customer": intent["customer"]})


@sandbox_bp.get("/elements/sessions")
def elements_session() -> Any:
    """What a CustomerSession lets the Payment Element show: its ``payment_element``
    features and, when ``payment_method_redisplay`` is enabled, the customer's saved cards."""
    settings = current_app.extensions["psp_connector"].settings
    if not hmac.compare_digest(request.args.get("key", ""), settings["STRIPE_PUBLISHABLE_KEY"]):
        return _error(401, "Invalid API Key provided.")
    customer = _signed_in_stripe_customer()
    if not request.args.get("customer_session_client_secret", "").startswith("cuss_secret_") or customer is None:
        return _error(400, "The customer_session_client_secret is invalid or has expired.")
    features = json.loads(settings["STRIPE_SAVED_PAYMENT_METHODS_CONFIG"] or "{}")
    methods: list[dict[str, Any]] = []
    if features.get("payment_method_redisplay") == "enabled":
        listed = _double("GET", f"/payment_methods?customer={customer}&type=card")
        if listed.status_code != 200:
            return _forwarded(listed)
        methods = [{"id": m["id"], "type": "card", "card": {k: m["card"].get(k) for k in _CARD_DISPLAY}}
                   for m in listed.json()["data"]]
    return jsonify({"customer": customer, "features": features, "payment_methods": methods})


def _signed_in_stripe_customer() -> str | None:
    """The Stripe Customer of the shop's signed-in customer.

    The double keeps no CustomerSessions to look a client secret up in, so the sandbox
    lists saved cards only to the signed-in customer they belong to (the sandbox API is
    served by the shop, on its origin, with its session cookie).
    """
    from .accounts import current_account
    from .cart import psp

    account = current_account()
    customer = psp.platform.get_customer(account.customer_id) if account else None
    return customer.stripe_customer_id if customer else None


@sandbox_bp.post("/payment_intents/<intent_id>/_authenticate")
def authenticate(intent_id: str) -> Any:
    """Pass or fail the 3D Secure challenge the stand-in showed."""
    intent = _authorized_intent(intent_id, request.form)
    if isinstance(intent, Response):
        return intent
    success = request.form.get("success") == "true"
    return _forwarded(_double("POST", f"/payment_intents/{intent_id}/_authenticate",
                              {"client_secret": intent["client_secret"], "success": str(success).lower()}))
