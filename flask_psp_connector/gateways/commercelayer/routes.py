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

from flask import Flask, Response, after_this_request, has_request_context, jsonify, request

from flask_psp_connector.errors import PSPError, redact
from flask_psp_connector.gateways.commercelayer import payload
from flask_psp_connector.gateways.commercelayer.actions import GATEWAY_MARK, MARK_VALUE, CommerceLayerGateway
from flask_psp_connector.gateways.commercelayer.schemas import (
    DocumentSchema,
    TokenResponseSchema,
    TransactionResponseSchema,
)
from flask_psp_connector.gateways.commercelayer.signature import SIGNATURE_HEADER, is_signed
from flask_psp_connector.gateways.delivery import deliver
from flask_psp_connector.gateways.store import GatewayStore
from flask_psp_connector.http.errors import CommerceLayerErrors
from flask_psp_connector.http.guards import reject_hostile_input
from flask_psp_connector.http.openapi import Api, OwnErrorsBlueprint, Security
from flask_psp_connector.platforms.embedded.database import Database
from flask_psp_connector.ports import Answer
from flask_psp_connector.settings import Settings
from flask_psp_connector.signals import payment_failed, payment_succeeded, refund_recorded
from flask_psp_connector.state import ConnectorState, connector_state
from flask_psp_connector.stripe.adapter import StripeGateway

log = logging.getLogger("flask_psp_connector.gateways")

_SIGNED: Security = [{"commerceLayerSignature": []}]
_HEADER = {"in": "header", "name": SIGNATURE_HEADER, "required": True, "schema": {"type": "string"},
           "description": "Base64 of HMAC-SHA256 over the raw body with the gateway's shared secret"}


def init_gateway(api: Api, database: Database, stripe: StripeGateway | None,
                 settings: Settings) -> CommerceLayerGateway[GatewayStore]:
    """Register the routes under ``PSP_GATEWAY_URL_PREFIX`` and return the gateway."""
    api.spec.components.security_scheme(
        "commerceLayerSignature", {"type": "apiKey", "in": "header", "name": SIGNATURE_HEADER})
    api.register_blueprint(commercelayer_blueprint(), url_prefix=f"{settings['PSP_GATEWAY_URL_PREFIX']}/commercelayer")
    return CommerceLayerGateway(GatewayStore(database), stripe, capture_method=settings["COMMERCELAYER_CAPTURE_METHOD"],
                                callback_url=settings["COMMERCELAYER_CALLBACK_URL"])


def connect_callbacks(app: Flask, gateway: CommerceLayerGateway[GatewayStore], secret: str) -> None:
    """Try an action's callback as soon as the Stripe event that settled it is stored.

    The gateway's claim on the event settles the action and puts its callback in the
    outbox; this receiver of the payment signals (sent once the event is stored, and not
    for a duplicate) tries it once the webhook's response is sent. The outbox keeps it
    until accepted (``flask psp gateways deliver``).
    """

    def deliver_after_response(sender: Flask, *, payment: Any, stripe_object: Any, **_: Any) -> None:
        metadata = (stripe_object or {}).get("metadata") or {}
        if payment is not None or metadata.get(GATEWAY_MARK) != MARK_VALUE or not has_request_context():
            return
        action_id = stripe_object["id"]

        @after_this_request
        def deliver_later(response: Response) -> Response:
            response.call_on_close(lambda: _deliver_now(gateway.store, action_id, secret))
            return response

    for signal in (payment_succeeded, payment_failed, refund_recorded):
        signal.connect(deliver_after_response, sender=app, weak=False)


def _deliver_now(store: GatewayStore, action_id: str, secret: str) -> None:
    try:
        callback = store.callback(action_id)
        # One tried already waits for its next attempt on the outbox's schedule.
        if callback is not None and callback.attempts == 0:
            deliver(store, callback, secret)
    except Exception as exc:  # the outbox keeps the callback; `flask psp gateways deliver` retries it
        log.warning("Callback for %s left to the outbox: %s", action_id, redact(str(exc)))


def _state() -> ConnectorState:
    return connector_state()


def _gateway() -> CommerceLayerGateway[GatewayStore]:
    gateway = _state().commercelayer
    if gateway is None:  # the routes are registered only with the gateway
        raise RuntimeError("The Commerce Layer gateway is not configured.")
    return gateway


def commercelayer_blueprint() -> OwnErrorsBlueprint:
    """A new blueprint of the gateway's routes: signed requests only, errors in the
    protocol's failure shape."""
    blp = OwnErrorsBlueprint(
        "commercelayer", __name__, description="Commerce Layer external payment gateway, backed by Stripe"
    )
    blp.before_request(_verify_signature)
    route = _router(blp)

    @route("/authorize", "Authorize the order's amount with a Stripe PaymentMethod or PaymentIntent")
    def authorize(document: dict[str, Any]) -> Response:
        """Authorize: ``payment_source_token`` is ``pm_...`` (confirmed here) or ``pi_...``."""
        return _answer(_gateway().authorize(payload.authorize_request(payload.document(document))))

    @route("/capture", "Capture (part of) an authorization")
    def capture(document: dict[str, Any]) -> Response:
        """Capture ``capture_amount_cents`` of the authorization."""
        return _answer(_gateway().capture(payload.capture_request(payload.document(document))))

    @route("/void", "Void an authorization")
    def void(document: dict[str, Any]) -> Response:
        """Release the authorization; a captured one is refused (refund it instead)."""
        return _answer(_gateway().void(payload.void_request(payload.document(document))))

    @route("/refund", "Refund (part of) a capture")
    def refund(document: dict[str, Any]) -> Response:
        """Refund ``refund_amount_cents`` of the capture."""
        return _answer(_gateway().refund(payload.refund_request(payload.document(document))))

    @route("/token", "Save a payment source on the customer's Stripe customer", TokenResponseSchema)
    def customer_token(document: dict[str, Any]) -> Response:
        """Answer ``customer_token`` (Stripe customer) and ``payment_source_token`` (its PaymentMethod)."""
        return _answer(_gateway().customer_token(payload.token_request(payload.document(document))))

    CommerceLayerErrors().install(blp)
    return blp


def _verify_signature() -> None:
    secret = _state().settings["COMMERCELAYER_SHARED_SECRET"]
    if not is_signed(request.get_data(), request.headers.get(SIGNATURE_HEADER), secret):
        raise PSPError("The request signature is missing or does not match.", status=401, code="invalid_signature")
    reject_hostile_input(request)


def _answer(answer: Answer) -> Response:
    response = jsonify(answer.body)
    response.status_code = answer.status
    return response


View = Callable[[dict[str, Any]], Response]


def _router(blp: OwnErrorsBlueprint) -> Callable[..., Callable[[View], View]]:
    """A decorator registering a signed POST route on ``blp``, documented with the protocol's answers."""

    def route(path: str, summary: str, response_schema: type = TransactionResponseSchema) -> Callable[[View], View]:
        def decorate(view: View) -> View:
            for decorator in reversed((
                blp.route(path, methods=["POST"]),
                blp.doc(summary=summary, security=_SIGNED, parameters=[_HEADER]),
                blp.arguments(DocumentSchema),
                blp.response(200, response_schema, description="Done"),
                blp.alt_response(202, schema=response_schema, description="Pending: settled later by a signed callback"),
                blp.alt_response(401, schema=response_schema, description="Missing or wrong signature; nothing done"),
                blp.alt_response(402, schema=response_schema, description="Declined (Stripe's decline code)"),
                blp.alt_response(422, schema=response_schema, description="Invalid payload or state"),
                blp.alt_response("default", schema=response_schema,
                                 description="Any other error, in the protocol's shape"),
            )):
                view = decorator(view)
            return view

        return decorate

    return route
