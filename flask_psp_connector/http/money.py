"""Money on the wire, one way: amounts in minor units, ISO 4217 codes, commercetools' Money.

Every schema that reads or writes an amount uses these fields, so a limit or a pattern is
stated once for the processor and the gateways alike.
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

#: The largest amount in minor units a request may carry (commercetools' own limit is near it).
MAX_MINOR_UNITS = 999_999_999_999


def minor_units(**kwargs: Any) -> fields.Integer:
    """An amount in minor units (cents): a JSON integer, never a float or a string."""
    return fields.Integer(strict=True, validate=validate.Range(min=0, max=MAX_MINOR_UNITS), **kwargs)


def currency_code(**kwargs: Any) -> fields.String:
    """A three-letter ISO 4217 currency code."""
    return fields.String(validate=validate.Regexp(r"^[A-Za-z]{3}$"), **kwargs)


class MoneySchema(Schema):
    """commercetools' Money: ``{"centAmount", "currencyCode"}``."""

    centAmount = minor_units(required=True)
    currencyCode = currency_code(required=True)


class TypedMoneySchema(MoneySchema):
    """commercetools' TypedMoney: Money with its ``fractionDigits``."""

    fractionDigits = fields.Integer(required=True)
