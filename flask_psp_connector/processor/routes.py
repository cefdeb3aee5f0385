"""The processor API: the routes of the official Stripe connector for commercetools.

Same paths, methods, auth and bodies, so its browser enabler works against us
unchanged. Views parse, authorize, call one use case and serialize.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin

from flask import Response, current_app, g, jsonify, request
from webargs.flaskparser import FlaskParser

from flask_psp_connector.auth.guards import require_checkout, require_jwt, require_oauth2, require_session
from flask_psp_connector.errors import PSPError, ValidationFailed
from flask_psp_connector.http.cors import resolve_origins, storefront_cors
from flask_psp_connector.http.errors import UpstreamErrors
from flask_psp_connector.http.openapi import ApiBlueprint, Security
from flask_psp_connector.observability import telemetry
from flask_psp_connector.processor import customers, express, operations, payments
from flask_psp_connector.processor.health import check_status, webhook_health
from flask_psp_connector.processor.schemas import (
    ConfigElementResponseSchema,
    ConfigResponseSchema,
    ConfirmPaymentRequestSchema,
    CreatePaymentRequestSchema,
    CustomerSessionResponseSchema,
    ErrorResponseSchema,
    ExpressPaymentDataResponseSchema,
    ForbiddenOriginSchema,
    PaymentComponentsResponseSchema,
    PaymentIntentRequestSchema,
    PaymentIntentResponseSchema,
    PaymentResponseSchema,
    StatusResponseSchema,
)
from flask_psp_connector.state import ConnectorState, connector_state


class _Parser(FlaskParser):
    # Upstream answers invalid input with 400, not webargs' 422.
    DEFAULT_VALIDATION_STATUS = 400


class _Blueprint(ApiBlueprint):
    ARGUMENTS_PARSER = _Parser()


_SESSION: Security = [{"sessionId": []}]
_BEARER: Security = [{"bearerAuth": []}]

_EXPRESS_HEADERS = [
    {"in": "header", "name": "x-express-checkout", "schema": {"type": "string", "enum": ["true", "1"]},
     "description": "Sent by the Express Checkout Element: no customer unless x-express-customer-session."},
    {"in": "header", "name": "x-express-customer-session", "schema": {"type": "string", "enum": ["true"]},
     "description": "The Express Checkout Element runs with the customer's session (/customer/session)."},
]


def processor_blueprint() -> ApiBlueprint:
    """A new blueprint of the processor routes, answering errors in upstream's body and
    with CORS headers for the storefront's origins (``ALLOWED_ORIGINS``)."""
    blp = _Blueprint("processor", __name__, description="Checkout and payment operations (commercetools processor API)")
    _checkout_routes(blp)
    _browser_routes(blp)
    _operations_routes(blp)
    UpstreamErrors().install(blp)
    blp.after_request(storefront_cors)
    return blp


def _state() -> ConnectorState:
    return connector_state()


def _stripe() -> Any:
    stripe = _state().stripe
    if stripe is None:
        raise PSPError("Stripe is not configured (STRIPE_SECRET_KEY).", status=503, code="ServiceUnavailable")
    return stripe


def _return_url() -> str:
    """The merchant return URL of the session, else the configured one, made absolute."""
    configured: str = g.psp_session.merchant_return_url or _state().settings["MERCHANT_RETURN_URL"] or "/"
    return urljoin(request.url_root, configured)


def _header_flag(name: str, accepted: tuple[str, ...]) -> bool:
    """Whether the flag header ``name`` is set; a value outside ``accepted`` is refused (400)."""
    value = request.headers.get(name)
    if value is None:
        return False
    if value not in accepted:
        raise ValidationFailed([{
            "code": "InvalidField", "field": name, "location": "headers",
            "message": f"The value is not valid for field {name}: must be one of {', '.join(accepted)}.",
        }])
    return True


def _create_payment() -> dict[str, Any]:
    # Upstream's exact header values: 'true' or '1', and 'true'.
    express_checkout = _header_flag("x-express-checkout", ("true", "1"))
    express_customer_session = _header_flag("x-express-customer-session", ("true",))
    result = payments.create_payment(
        _state().platform,
        _stripe(),
        _state().options,
        g.psp_checkout,
        express=express_checkout,
        express_customer_session=express_customer_session,
    )
    telemetry.annotate(payment_id=result.payment.id, payment_intent=result.payment.interface_id)
    body = {
        "sClientSecret": result.client_secret,
        "clientSecret": result.client_secret,
        "paymentReference": result.payment.id,
        "merchantReturnUrl": _return_url(),
        "cartId": result.cart.id,
        "cartInfo": {"amount": result.payment.amount_planned.cent_amount,
                     "currency": result.payment.amount_planned.currency_code},
    }
    if result.billing_address is not None:
        body["billingAddress"] = result.billing_address
    return body


def _checkout_routes(blp: ApiBlueprint) -> None:
    """The session's checkout: Payment Element settings, the PaymentIntent, its confirmation."""

    @blp.route("/config-element/<payment_component>")
    @blp.doc(security=_SESSION)
    @blp.response(200, ConfigElementResponseSchema)
    @blp.alt_response(400, schema=ErrorResponseSchema, description="The cart has already been paid in full")
    @require_checkout
    def config_element(payment_component: str) -> dict[str, Any]:
        """Cart amount and Payment Element settings for the session's cart."""
        body: dict[str, Any] = payments.config_element(_state().platform, _state().options, g.psp_checkout,
                                                       payment_component)
        return body

    @blp.route("/payments", methods=["GET"])
    @blp.doc(security=_SESSION, parameters=_EXPRESS_HEADERS)
    @blp.response(200, PaymentResponseSchema)
    @require_checkout
    def get_payments() -> dict[str, Any]:
        """Create the PaymentIntent for the cart's server-side amount (checkout-app flavour)."""
        return _create_payment()

    @blp.route("/payments", methods=["POST"])
    @blp.doc(security=_SESSION, parameters=_EXPRESS_HEADERS)
    @blp.response(200, PaymentResponseSchema)
    @require_checkout
    @blp.arguments(CreatePaymentRequestSchema, required=False)
    def post_payments(_options: dict[str, Any]) -> dict[str, Any]:
        """Create the PaymentIntent for the cart's server-side amount (connect-app flavour).

        The body is optional and never carries an amount.
        """
        return _create_payment()

    @blp.route("/confirmPayments/<payment_id>", methods=["POST"])
    @blp.doc(security=_SESSION)
    @blp.response(200, PaymentIntentResponseSchema, description="Approved")
    @blp.alt_response(202, schema=PaymentIntentResponseSchema, description="Pending (async settlement)")
    @blp.alt_response(400, schema={"oneOf": [{"$ref": "#/components/schemas/PaymentIntentResponse"},
                                              {"$ref": "#/components/schemas/ErrorResponse"}]},
                      description="Rejected (outcome), or an invalid request (upstream's error body)")
    @require_session
    @blp.arguments(ConfirmPaymentRequestSchema)
    def confirm_payment(body: dict[str, Any], payment_id: str) -> tuple[dict[str, Any], int]:
        """Check the PaymentIntent the browser confirmed and record the authorization."""
        telemetry.annotate(payment_id=payment_id, payment_intent=body["paymentIntent"])
        try:
            outcome = payments.confirm_payment(
                _state().signalling_platform(), _stripe(), g.psp_session, payment_id, body["paymentIntent"],
                stale_policy=_state().options.stale_policy,
            )
        except payments.StalePayment as exc:
            current_app.logger.warning("Payment %s paid for a cart state that is gone: %s", payment_id, exc.message)
            return {"outcome": payments.REJECTED, "error": exc.message}, 400
        except PSPError as exc:
            if exc.status >= 500:
                raise
            current_app.logger.info("Payment %s confirmation rejected: %s", payment_id, exc.message)
            return {"outcome": payments.REJECTED, "error": "Payment confirmation failed"}, 400
        return {"outcome": outcome}, 202 if outcome == payments.PENDING else 200


def _browser_routes(blp: ApiBlueprint) -> None:
    """What the storefront's pages read: the customer, the wallet sheet, the public settings."""

    @blp.route("/customer/session")
    @blp.doc(security=_SESSION)
    @blp.response(200, CustomerSessionResponseSchema, description="The cart's customer at Stripe")
    @blp.alt_response(204, description="The cart has no known customer")
    @require_session
    def customer_session() -> Response | dict[str, Any]:
        """The Stripe Customer (found or created) and a CustomerSession for the cart's customer; 204 for guests."""
        state = _state()
        body: dict[str, Any] | None = customers.customer_session(state.platform, _stripe(), state.options,
                                                                 g.psp_session.cart_id)
        return Response(status=204) if body is None else body

    @blp.route("/express-payment-data")
    @blp.doc(security=_SESSION)
    @blp.response(200, ExpressPaymentDataResponseSchema)
    @blp.alt_response(400, schema=ErrorResponseSchema, description="The cart has already been paid in full")
    @require_session
    def express_payment_data() -> dict[str, Any]:
        """Total, currency and lines (subtotal, shipping, tax) of the cart for the wallet sheet."""
        body: dict[str, Any] = express.express_payment_data(_state().platform, g.psp_session.cart_id)
        return body

    @blp.route("/express-config", methods=["POST"])
    @blp.response(200, ConfigResponseSchema)
    @blp.alt_response(403, schema=ForbiddenOriginSchema, description="Origin not in ALLOWED_ORIGINS")
    def express_config() -> tuple[Response, int] | dict[str, Any]:
        """Publishable key and Express Checkout settings for a page without a session.

        With ALLOWED_ORIGINS set, the ``Origin`` header must be one of them (upstream's
        corsAuthHook); the body is ignored.
        """
        origins = resolve_origins(_state().settings["ALLOWED_ORIGINS"])
        if origins and request.headers.get("Origin") not in origins:
            return jsonify(error="Forbidden", message="CORS origin not allowed."), 403
        body: dict[str, Any] = express.express_config(_state().options)
        return body

    @blp.route("/operations/config")
    @blp.doc(security=_SESSION)
    @blp.response(200, ConfigResponseSchema)
    @require_session
    def operations_config() -> dict[str, Any]:
        """Publishable key and display settings for the browser."""
        return _config()

    @blp.route("/applePayConfig")
    @blp.response(200, {"type": "string"}, description="Apple Pay domain association file", content_type="text/plain")
    def apple_pay_config() -> Response:
        """Apple Pay's domain association file (STRIPE_APPLE_PAY_WELL_KNOWN)."""
        return Response(_state().settings["STRIPE_APPLE_PAY_WELL_KNOWN"], mimetype="text/plain")


def _config() -> dict[str, Any]:
    settings = _state().settings
    body = {
        "environment": settings["MOCK_ENVIRONMENT"],
        "publishableKey": settings["STRIPE_PUBLISHABLE_KEY"],
        "captureMethod": settings["STRIPE_CAPTURE_METHOD"],
    }
    if settings["STRIPE_APPEARANCE_PAYMENT_ELEMENT"] is not None:
        body["appearance"] = settings["STRIPE_APPEARANCE_PAYMENT_ELEMENT"]
    if settings["STRIPE_EXPRESS_ELEMENT_OPTIONS"] is not None:
        body["expressElementOptions"] = settings["STRIPE_EXPRESS_ELEMENT_OPTIONS"]
    return body


def _operations_routes(blp: ApiBlueprint) -> None:
    """The merchant's back office: components, health, and changes to a payment."""

    @blp.route("/operations/payment-components")
    @blp.doc(security=_BEARER)
    @blp.response(200, PaymentComponentsResponseSchema)
    @require_jwt
    def payment_components() -> dict[str, Any]:
        """The payment components this connector offers."""
        return {"dropins": [{"type": "embedded"}], "components": [], "express": [{"type": "dropin"}]}

    @blp.route("/operations/status")
    @blp.doc(security=_BEARER)
    @blp.response(200, StatusResponseSchema)
    @require_jwt
    def status() -> dict[str, Any]:
        """Health of the store and of Stripe; always 200, the body says how healthy."""
        state = _state()
        checks = {"Commerce platform": state.platform.check_health, "Webhooks": lambda: webhook_health(state.platform)}
        if state.stripe is not None:
            checks["Stripe"] = state.stripe.ping
        return check_status(checks, timeout=state.options.health_check_timeout)

    @blp.route("/operations/payment-intents/<payment_id>", methods=["POST"])
    @blp.doc(security=_BEARER)
    @blp.response(200, PaymentIntentResponseSchema)
    @blp.alt_response(400, schema=ErrorResponseSchema, description="Invalid operation or amount")
    @require_oauth2("manage_project", "manage_checkout_payment_intents")
    @blp.arguments(PaymentIntentRequestSchema)
    def modify_payment(body: dict[str, Any], payment_id: str) -> dict[str, Any]:
        """Capture (full or partial), cancel, refund (partial, several) or reverse a payment."""
        telemetry.annotate(payment_id=payment_id)
        action = body["actions"][0]
        amount = action.get("amount")
        outcome = operations.modify_payment(
            _state().signalling_platform(),
            _stripe(),
            _state().options,
            payment_id,
            operations.PaymentAction(
                action["action"],
                amount["centAmount"] if amount else None,
                amount["currencyCode"] if amount else None,
            ),
        )
        return {"outcome": outcome}
