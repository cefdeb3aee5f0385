"""The Hantera PSP routes (``{PSP_GATEWAY_URL_PREFIX}/hantera``).

* ``POST /ingress/commerce/carts/<cartId>/payment/stripe`` — the checkout ingress the
  storefront calls (``cart.submitPayment(cartId, 'stripe', {})``): ``{clientSecret}``.
* ``POST /ingress/commerce/carts/<cartId>/payment/stripe/confirm`` — the storefront's
  call once Stripe.js confirmed; completes the cart when the payment is authorized.
* ``POST /jobs/capture`` — the OnPaymentCapture job's call, with the bearer token
  ``HANTERA_JOB_SECRET``: ``{externalReference, amount}`` → a Stripe capture.

Errors answer in the shape of Hantera's cart ingresses: ``{"errors": [{"code", "message"}]}``.
Amounts travel as exact JSON numbers in major units, read as decimals, never floats.
"""

from __future__ import annotations

import hmac
import json
from decimal import Decimal
from typing import Any

from flask import Response, request
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from flask_psp_connector.errors import PSPError
from flask_psp_connector.gateways.hantera.actions import HanteraGateway
from flask_psp_connector.gateways.hantera.client import HanteraClient, dumps
from flask_psp_connector.gateways.store import GatewayStore
from flask_psp_connector.http.cors import storefront_cors
from flask_psp_connector.http.errors import HanteraErrors, first_message
from flask_psp_connector.http.money import currency_code
from flask_psp_connector.http.openapi import Api, OwnErrorsBlueprint
from flask_psp_connector.platforms.embedded.database import Database
from flask_psp_connector.settings import Settings
from flask_psp_connector.state import ConnectorState, connector_state
from flask_psp_connector.stripe.adapter import StripeGateway

_CART_ID = {"in": "path", "name": "cart_id", "required": True, "schema": {"type": "string", "maxLength": 128}}


class ClientSecretSchema(Schema):
    """The checkout ingress's answer."""

    clientSecret = fields.String(required=True, metadata={"description": "The PaymentIntent's client secret"})


class ConfirmSchema(Schema):
    """Where the cart stands after the storefront's confirm call."""

    cartState = fields.String(required=True, metadata={"description": "completed once paid, else open"})
    paymentIntentStatus = fields.String(required=True)


class CaptureJobSchema(Schema):
    """What the OnPaymentCapture job posts."""

    class Meta:
        unknown = EXCLUDE

    externalReference = fields.String(required=True, validate=validate.Regexp(r"^pi_[A-Za-z0-9_]{1,200}$"),
                                      metadata={"description": "The payment's externalReference (PaymentIntent id)"})
    amount = fields.Decimal(required=True, allow_nan=False, validate=validate.Range(min=0, min_inclusive=False),
                            # The range as JSON numbers: apispec would render the Decimal bound as a string.
                            metadata={"description": "The capture's amount, major units", "minimum": 0,
                                      "exclusiveMinimum": True})
    captureId = fields.String(load_default="", validate=validate.Length(max=128),
                              metadata={"description": "Hantera's capture id, when the job passes it"})


class CaptureAnswerSchema(Schema):
    """The capture job's answer."""

    externalReference = fields.String(required=True)
    paymentId = fields.String(required=True)
    capturedAmount = fields.Decimal(required=True, as_string=False)
    currencyCode = currency_code(required=True)


class HanteraErrorSchema(Schema):
    """One error, as Hantera's ingresses write it."""

    code = fields.String(required=True)
    message = fields.String(required=True)


class HanteraErrorsSchema(Schema):
    """Hantera's error body."""

    errors = fields.List(fields.Nested(HanteraErrorSchema), required=True)


def init_gateway(api: Api, database: Database, stripe: StripeGateway | None,
                 settings: Settings) -> HanteraGateway[GatewayStore]:
    """Register the routes under ``{PSP_GATEWAY_URL_PREFIX}/hantera`` and return the flow."""
    api.spec.components.security_scheme("hanteraJob", {"type": "http", "scheme": "bearer"})
    api.register_blueprint(hantera_blueprint(), url_prefix=f"{settings['PSP_GATEWAY_URL_PREFIX']}/hantera")
    client = HanteraClient(api_url=settings["HANTERA_API_URL"], client_id=settings["HANTERA_CLIENT_ID"],
                           client_secret=settings["HANTERA_CLIENT_SECRET"], scope=settings["HANTERA_SCOPE"])
    return HanteraGateway(GatewayStore(database), stripe, client, capture_method=settings["HANTERA_CAPTURE_METHOD"],
                          number_prefix=settings["HANTERA_PAYMENT_NUMBER_PREFIX"])


def _state() -> ConnectorState:
    return connector_state()


def _gateway() -> HanteraGateway[GatewayStore]:
    gateway = _state().hantera
    if gateway is None:  # the routes are registered only with the gateway
        raise RuntimeError("The Hantera gateway is not configured.")
    return gateway


def _json(body: dict[str, Any], status: int = 200) -> Response:
    return Response(dumps(body), status=status, mimetype="application/json")


def _cart_id(cart_id: str) -> str:
    if not 0 < len(cart_id) <= 128 or not all(c.isalnum() or c in "-_" for c in cart_id):
        raise PSPError("The cart id is not valid.", status=400, code="invalid_cart_id")
    return cart_id


def _no_body_or_object() -> None:
    """The storefront SDK posts ``{}`` (or nothing): anything else is refused."""
    if request.get_data() and not isinstance(_decoded_body(), dict):
        raise PSPError("The body must be a JSON object.", status=400, code="invalid_body")


def _decoded_body() -> Any:
    try:
        return json.loads(request.get_data(), parse_float=Decimal)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        raise PSPError("The body is not valid JSON.", status=400, code="invalid_body") from None


def hantera_blueprint() -> OwnErrorsBlueprint:
    """A new blueprint of the Hantera routes: errors in Hantera's shape, CORS for the storefront."""
    blp = OwnErrorsBlueprint("hantera", __name__, description="Hantera PSP flow, backed by Stripe")

    @blp.route("/ingress/commerce/carts/<cart_id>/payment/stripe", methods=["POST"])
    @blp.doc(summary="Checkout ingress: the client secret of the cart's PaymentIntent", parameters=[_CART_ID])
    @blp.response(200, ClientSecretSchema, description="Pay it with Stripe.js (confirmPayment)")
    @blp.alt_response(404, schema=HanteraErrorsSchema, description="Hantera has no such cart")
    @blp.alt_response(409, schema=HanteraErrorsSchema, description="The cart is not open, or its payment is under way")
    @blp.alt_response("default", schema=HanteraErrorsSchema, description="Any other error, in Hantera's shape")
    def checkout(cart_id: str) -> Response:
        """One PaymentIntent per cart, for the total Hantera renders; repeated calls hand out
        the same one (its amount follows the cart's total until it is confirmed)."""
        _no_body_or_object()
        return _json({"clientSecret": _gateway().checkout(_cart_id(cart_id))})

    @blp.route("/ingress/commerce/carts/<cart_id>/payment/stripe/confirm", methods=["POST"])
    @blp.doc(summary="Complete the cart once its payment is authorized", parameters=[_CART_ID])
    @blp.response(200, ConfirmSchema, description="Where the cart stands")
    @blp.alt_response(402, schema=HanteraErrorsSchema, description="Declined (Stripe's decline code)")
    @blp.alt_response(404, schema=HanteraErrorsSchema, description="No payment was started for this cart")
    @blp.alt_response("default", schema=HanteraErrorsSchema, description="Any other error, in Hantera's shape")
    def confirm(cart_id: str) -> Response:
        """Read the cart's PaymentIntent from Stripe and, if authorized, create the Hantera
        payment and complete the cart (the webhook does the same if this call never comes)."""
        _no_body_or_object()
        return _json(_gateway().confirm(_cart_id(cart_id)))

    @blp.route("/jobs/capture", methods=["POST"])
    @blp.doc(summary="Capture for Hantera's OnPaymentCapture job", security=[{"hanteraJob": []}],
             requestBody={"required": True, "content": {"application/json": {"schema": CaptureJobSchema}}})
    @blp.response(200, CaptureAnswerSchema, description="Captured at Stripe and charged on the Hantera payment")
    @blp.alt_response(401, schema=HanteraErrorsSchema, description="Missing or wrong bearer token; nothing done")
    @blp.alt_response(409, schema=HanteraErrorsSchema, description="Not capturable, or captured for another amount")
    @blp.alt_response(422, schema=HanteraErrorsSchema, description="Invalid amount")
    @blp.alt_response("default", schema=HanteraErrorsSchema, description="Any other error, in Hantera's shape")
    def capture() -> Response:
        """Capture ``amount`` of the PaymentIntent ``externalReference`` (once: Stripe releases
        the rest), then record the charge on the Hantera payment."""
        _require_job_token()
        try:
            job = CaptureJobSchema().load(_decoded_body())
        except ValidationError as exc:
            raise PSPError(first_message(exc.messages), status=422, code="invalid_body") from None
        return _json(_gateway().capture(job["externalReference"], job["amount"], job["captureId"]))

    HanteraErrors().install(blp)
    blp.after_request(storefront_cors)
    return blp


def _require_job_token() -> None:
    secret = _state().settings["HANTERA_JOB_SECRET"]
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not secret or not hmac.compare_digest(token.strip().encode(), secret.encode()):
        raise PSPError("The job's bearer token is missing or wrong.", status=401, code="unauthorized")
