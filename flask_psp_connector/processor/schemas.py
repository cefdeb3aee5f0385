"""Request and response schemas of the processor routes (upstream's DTOs)."""

from __future__ import annotations

from typing import Any

from marshmallow import INCLUDE, Schema, ValidationError, fields, validate, validates_schema

from flask_psp_connector.http.money import MoneySchema, TypedMoneySchema, currency_code, minor_units

ACTIONS = ("capturePayment", "cancelPayment", "refundPayment", "reversePayment")


class PaymentActionSchema(Schema):
    action = fields.String(required=True, validate=validate.OneOf(ACTIONS))
    amount = fields.Nested(MoneySchema)
    merchantReference = fields.String(validate=validate.Length(max=256))
    transactionId = fields.String(validate=validate.Length(max=64))

    @validates_schema
    def _amount_when_needed(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("action") in ("capturePayment", "refundPayment") and "amount" not in data:
            raise ValidationError("Missing data for required field.", field_name="amount")


class PaymentIntentRequestSchema(Schema):
    actions = fields.List(
        fields.Nested(PaymentActionSchema), required=True, validate=validate.Length(min=1, max=1)
    )
    merchantReference = fields.String(validate=validate.Length(max=256))


class PaymentIntentResponseSchema(Schema):
    outcome = fields.String(required=True, validate=validate.OneOf(("approved", "rejected", "received", "pending")))
    error = fields.String()


class ConfirmPaymentRequestSchema(Schema):
    paymentIntent = fields.String(required=True, validate=validate.Regexp(r"^pi_[A-Za-z0-9_]{1,250}$"))
    confirmationToken = fields.String(validate=validate.Length(max=255))


class CreatePaymentRequestSchema(Schema):
    paymentMethodOptions = fields.Dict(keys=fields.String(), values=fields.Dict())


class CartInfoSchema(Schema):
    amount = minor_units(required=True)
    currency = currency_code(required=True)


class PaymentResponseSchema(Schema):
    sClientSecret = fields.String(required=True)
    clientSecret = fields.String(required=True)
    paymentReference = fields.String(required=True)
    merchantReturnUrl = fields.String(required=True)
    cartId = fields.String(required=True)
    billingAddress = fields.String()
    cartInfo = fields.Nested(CartInfoSchema, metadata={
        "description": "The PaymentIntent's amount (minor units) and currency: a browser checks it against "
                       "the amount it showed before confirming."})


class ConfigElementResponseSchema(Schema):
    cartInfo = fields.Nested(CartInfoSchema, required=True)
    appearance = fields.String()
    captureMethod = fields.String(required=True)
    setupFutureUsage = fields.String()
    layout = fields.String(required=True)
    collectBillingAddress = fields.String(required=True)
    paymentElementOptions = fields.String(metadata={"description": "Payment Element options (JSON text)."})
    flowType = fields.String(metadata={"description": "deferred, or pi_first: call /payments before mounting."})


class ConfigResponseSchema(Schema):
    environment = fields.String(required=True)
    publishableKey = fields.String(required=True)
    captureMethod = fields.String()
    appearance = fields.String()
    expressElementOptions = fields.String()


class ComponentSchema(Schema):
    type = fields.String(required=True)
    subtypes = fields.List(fields.String())


class PaymentComponentsResponseSchema(Schema):
    dropins = fields.List(fields.Nested(ComponentSchema), required=True)
    components = fields.List(fields.Nested(ComponentSchema), required=True)
    express = fields.List(fields.Nested(ComponentSchema), required=True)


class StatusCheckSchema(Schema):
    name = fields.String(required=True)
    status = fields.String(required=True)
    message = fields.String()
    details = fields.Dict()


class StatusResponseSchema(Schema):
    status = fields.String(required=True)
    timestamp = fields.String(required=True)
    version = fields.String(required=True)
    metadata = fields.Dict()
    checks = fields.List(fields.Nested(StatusCheckSchema), required=True)


class ErrorItemSchema(Schema):
    """One problem: upstream's code and message, plus what locates or explains it (other
    details, such as ``capturableAmount`` or a platform's own fields, may follow)."""

    class Meta:
        unknown = INCLUDE

    code = fields.String(required=True)
    message = fields.String(required=True)
    field = fields.String(metadata={"description": "The request field at fault (validation errors)"})
    location = fields.String(metadata={"description": "Where the field is: json, query, headers..."})
    detailedErrorMessage = fields.String(metadata={"description": "The parser's own words for unreadable JSON"})
    validAuthorities = fields.List(fields.String(), metadata={"description": "Scopes that would have been accepted"})


class ErrorResponseSchema(Schema):
    """Upstream's error body; auth refusals (401) add ``error`` and ``error_description`` (RFC 6750)."""

    message = fields.String(required=True)
    statusCode = fields.Integer(required=True)
    errors = fields.List(fields.Nested(ErrorItemSchema), required=True)
    error = fields.String(metadata={"description": "Auth refusals only: the RFC 6750 error code"})
    error_description = fields.String(metadata={"description": "Auth refusals only: the message"})


class ForbiddenOriginSchema(Schema):
    """Upstream's answer to an origin outside ALLOWED_ORIGINS on ``/express-config``."""

    error = fields.String(required=True)
    message = fields.String(required=True)


class ExpressLineItemSchema(Schema):
    name = fields.String(required=True)
    amount = fields.Nested(TypedMoneySchema, required=True)
    type = fields.String(required=True, validate=validate.OneOf(("SUBTOTAL", "SHIPPING", "TAX", "TOTAL")))


class ExpressPaymentDataResponseSchema(Schema):
    totalPrice = fields.Nested(TypedMoneySchema, required=True)
    currencyCode = fields.String(required=True)
    lineItems = fields.List(fields.Nested(ExpressLineItemSchema), required=True)


class CustomerSessionResponseSchema(Schema):
    stripeCustomerId = fields.String(required=True)
    ephemeralKey = fields.String(required=True)
    sessionId = fields.String(required=True)
