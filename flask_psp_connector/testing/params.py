"""Request parameters as Stripe reads them: unknown ones refused, booleans, amounts, metadata."""

from __future__ import annotations

from typing import Any

from flask_psp_connector.testing.ledger import StripeError


def only(params: dict[str, Any], allowed: set[str]) -> None:
    """Stripe refuses unknown parameters."""
    for name in params:
        if name not in allowed:
            raise StripeError(400, f"Received unknown parameter: {name}", code="parameter_unknown", param=name)


def flag(value: Any) -> bool:
    """A boolean parameter, sent as JSON or as a form value."""
    return value is True or str(value).lower() == "true"


def amount_param(value: Any, name: str, *, minimum: int = 1) -> int:
    """A positive integer amount in the currency's smallest unit."""
    try:
        amount = int(str(value))
    except ValueError:
        raise StripeError(400, f"Invalid integer: {value}", code="parameter_invalid_integer", param=name) from None
    if amount < minimum:
        raise StripeError(400, "This value must be greater than or equal to 1.", code="parameter_invalid_integer", param=name)
    return amount


def choice(value: Any, allowed: tuple[str, ...], name: str) -> str:
    """One of ``allowed``, else Stripe's 400 naming the accepted values."""
    if value not in allowed:
        raise StripeError(400, f"Invalid {name}: must be one of {', '.join(allowed)}",
                          code="parameter_invalid_empty" if value == "" else None, param=name)
    return str(value)


def merge_metadata(current: dict[str, str], update: Any) -> dict[str, str]:
    """Stripe merges metadata keys; an empty value removes a key; ``""`` for the whole clears it."""
    if update == "":
        return {}
    if not isinstance(update, dict):
        raise StripeError(400, "Invalid object", code="parameter_invalid_object", param="metadata")
    merged = dict(current)
    for key, value in update.items():
        if value in ("", None):
            merged.pop(key, None)
        else:
            merged[str(key)] = str(value)
    return merged
