"""The Commerce Layer external payment gateway routes (``{PSP_GATEWAY_URL_PREFIX}/commercelayer``).

Every request's ``X-CommerceLayer-Signature`` is checked on the raw body, in constant
time, before anything else; then the JSON:API payload is read, one use case runs, and
its answer is returned as is. Errors use the protocol's failure shape, never the
processor's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import flask_smorest
from flask import Response, after_this_request, current_app, has_request_context, jsonify, request
from werkzeug.exceptions import HTTPException

from flask_psp_connector.errors import PSPError, redact
from flask_psp_connector.gateways.commercelayer import payload
from flask_psp_connector.gateways.commercelayer.actions import CommerceLayerGateway, failure
from flask_psp_connector.gateways.commercelayer.schemas import (
    DocumentSchema,
    TokenResponseSchema,
    TransactionResponseSchema,
)
from flask_psp_connector.gateways.commercelayer.signature import SIGNATURE_HEADER, is_signed
from flask_psp_connector.gateways.delivery import deliver
from flask_psp_connector.gateways.store import Answer, GatewayStore, Settlement
from flask_psp_connector.http.guards import reject_hostile_input
from flask_psp_connector.http.openapi import OwnErrorsBlueprint
from flask_psp_connector.platforms.embedded.database import Database
from flask_psp_connector.settings import Settings
from flask_psp_connector.stripe.adapter import StripeGateway

log = logging.getLogger("flask_psp_connector.gateways")

blp = OwnErrorsBlueprint(
    "commercelayer", __name__, description="Commerce Layer external payment gateway, backed by Stripe"
)

_SIGNED = [{"commerceLayerSignature": []}]
_HEADER = {"in": "header", "name": SIGNATURE_HEADER, "required": True, "schema": {"type": "string"},
           "description": "Base64 of HMAC-SHA256 over the raw body with the gateway's shared secret"}


def init_gateway(api: flask_smorest.Api, database: Database, stripe: StripeGateway | None,
                 settings: Settings) -> CommerceLayerGateway:
    """Register the routes under ``PSP_GATEWAY_URL_PREFIX`` and return the gateway."""
    api.spec.components.security_scheme(
        "commerceLayerSignature", {"type": "apiKey", "in": "header", "name": SIGNATURE_HEADER})
    api.register_blueprint(blp, url_prefix=f"{settings['PSP_GATEWAY_URL_PREFIX']}/commercelayer")
    return CommerceLayerGateway(GatewayStore(database), stripe, capture_method=settings["COMMERCELAYER_CAPTURE_METHOD"],
                                callback_url=settings["COMMERCELAYER_CALLBACK_URL"])


def settlement_hook(gateway: CommerceLayerGateway, secret: str) -> Callable[[dict[str, Any]], str | None]:
    """The webhook pipeline's hook: settle the gateway's asynchronous actions, and try the
    new callback once the webhook's response is sent (the outbox keeps it until accepted)."""

    def hook(event: dict[str, Any]) -> str | None:
        detail = gateway.settle_event(event)
        if detail is not None and detail.endswith(Settlement.ENQUEUED) and has_request_context():
            action_id = event["data"]["object"]["id"]

            @after_this_request
            def deliver_after_response(response: Response) -> Response:
                response.call_on_close(lambda: _deliver_now(gateway.store, action_id, secret))
                return response

        return detail

    return hook


def _deliver_now(store: GatewayStore, action_id: str, secret: str) -> None:
    try:
        callback = store.callback(action_id)
        if callback is not None:
            deliver(store, callback, secret)
    except Exception as exc:  # the outbox keeps the callback; `flask psp gateways deliver` retries it
        log.warning("Callback for %s left to the outbox: %s", action_id, redact(str(exc)))


def _state() -> Any:
    return current_app.extensions["psp_connector"]


@blp.before_request
def _verify_signature() -> None:
    secret = _state().settings["COMMERCELAYER_SHARED_SECRET"]
    if not is_signed(request.get_data(), request.headers.get(SIGNATURE_HEADER), secret):
        raise PSPError("The request signature is missing or does not match.", status=401, code="invalid_signature")
    reject_hostile_input(request)


def _answer(answer: Answer) -> Response:
    response = jsonify(answer.body)
    response.status_code = answer.status
    return response


def _route(path: str, summary: str, response_schema: type = TransactionResponseSchema) -> Callable[[Any], Any]:
    """Register a signed POST route documented with the protocol's answers."""

    def decorate(view: Any) -> Any:
        for decorator in reversed((
            blp.route(path, methods=["POST"]),
            blp.doc(summary=summary, security=_SIGNED, parameters=[_HEADER]),
            blp.arguments(DocumentSchema),
            blp.response(200, response_schema, description="Done"),
            blp.alt_response(202, schema=response_schema, description="Pending: settled later by a signed callback"),
            blp.alt_response(401, schema=response_schema, description="Missing or wrong signature; nothing done"),
            blp.alt_response(402, schema=response_schema, description="Declined (Stripe's decline code)"),
            blp.alt_response(422, schema=response_schema, description="Invalid payload or state"),
            blp.alt_response("default", schema=response_schema, description="Any other error, in the protocol's shape"),
        )):
            view = decorator(view)
        return view

    return decorate


@_route("/authorize", "Authorize the order's amount with a Stripe PaymentMethod or PaymentIntent")
def authorize(document: dict[str, Any]) -> Response:
    """Authorize: ``payment_source_token`` is ``pm_...`` (confirmed here) or ``pi_...``."""
    return _answer(_state().commercelayer.authorize(payload.authorize_request(payload.document(document))))


@_route("/capture", "Capture (part of) an authorization")
def capture(document: dict[str, Any]) -> Response:
    """Capture ``capture_amount_cents`` of the authorization."""
    return _answer(_state().commercelayer.capture(payload.capture_request(payload.document(document))))


@_route("/void", "Void an authorization")
def void(document: dict[str, Any]) -> Response:
    """Release the authorization; a captured one is refused (refund it instead)."""
    return _answer(_state().commercelayer.void(payload.void_request(payload.document(document))))


@_route("/refund", "Refund (part of) a capture")
def refund(document: dict[str, Any]) -> Response:
    """Refund ``refund_amount_cents`` of the capture."""
    return _answer(_state().commercelayer.refund(payload.refund_request(payload.document(document))))


@_route("/token", "Save a payment source on the customer's Stripe customer", TokenResponseSchema)
def customer_token(document: dict[str, Any]) -> Response:
    """Answer ``customer_token`` (Stripe customer) and ``payment_source_token`` (its PaymentMethod)."""
    return _answer(_state().commercelayer.customer_token(payload.token_request(payload.document(document))))


# -- errors in the protocol's failure shape ------------------------------------------


def _failure(status: int, code: str, message: str) -> Response:
    """A failure answer; the token route's carries no transaction fields (it saves no transaction)."""
    if request.endpoint == "commercelayer.customer_token":
        return _answer(Answer(status, {"success": False, "data": {"error": {"code": code, "message": message}}}))
    return _answer(failure(status, None, None, code, message))


def _handle_psp_error(error: PSPError) -> Response:
    if error.status >= 500:
        log.error("%s on %s: %s", type(error).__name__, request.path, error.message)
    return _failure(error.status, error.code, error.message)


def _first_message(messages: Any, path: str = "") -> str:
    if isinstance(messages, dict):
        key, value = next(iter(messages.items()))
        return _first_message(value, f"{path}.{key}" if path else str(key))
    if isinstance(messages, list) and messages:
        return _first_message(messages[0], path) if not isinstance(messages[0], str) else f"{path}: {messages[0]}"
    return f"{path}: {messages}"


def _handle_http_exception(error: HTTPException) -> Response:
    messages = (getattr(error, "data", None) or {}).get("messages")
    if messages:
        return _failure(422, "invalid_payload", _first_message(messages.get("json", messages)))
    status = error.code or 500
    return _failure(status, error.name.lower().replace(" ", "_"), error.description or error.name)


def _handle_unexpected(error: Exception) -> Response:
    log.error("Unexpected %s on %s: %s", type(error).__name__, request.path, redact(str(error)))
    return _failure(500, "internal_error", "Internal server error.")


blp.register_error_handler(PSPError, _handle_psp_error)
blp.register_error_handler(HTTPException, _handle_http_exception)
blp.register_error_handler(Exception, _handle_unexpected)
