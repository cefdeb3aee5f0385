"""Schemas of the Commerce Layer gateway routes: the JSON:API request and the protocol's answers."""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields, validate

from flask_psp_connector.http.money import minor_units


class ResourceSchema(Schema):
    """A JSON:API resource object (``links`` and ``meta`` are ignored)."""

    class Meta:
        unknown = EXCLUDE

    id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    type = fields.String(required=True, validate=validate.Length(min=1, max=64))
    attributes = fields.Dict(keys=fields.String(), load_default=dict)
    relationships = fields.Dict(keys=fields.String(), load_default=dict)


class DocumentSchema(Schema):
    """The JSON:API document Commerce Layer posts: the target resource and its includes."""

    class Meta:
        unknown = EXCLUDE

    data = fields.Nested(ResourceSchema, required=True)
    included = fields.List(fields.Nested(ResourceSchema), load_default=list)


class ErrorSchema(Schema):
    code = fields.String(required=True)
    message = fields.String(required=True)


class TransactionDataSchema(Schema):
    transaction_token = fields.String(allow_none=True)
    amount_cents = minor_units(allow_none=True)
    action_id = fields.String(metadata={"description": "Only on 202: settled later by a signed callback"})
    metadata = fields.Dict()
    error = fields.Nested(ErrorSchema)


class TransactionResponseSchema(Schema):
    success = fields.Boolean(required=True)
    data = fields.Nested(TransactionDataSchema, required=True)


class TokenDataSchema(Schema):
    customer_token = fields.String()
    payment_source_token = fields.String()
    metadata = fields.Dict()
    error = fields.Nested(ErrorSchema)


class TokenResponseSchema(Schema):
    success = fields.Boolean(required=True)
    data = fields.Nested(TokenDataSchema, required=True)
