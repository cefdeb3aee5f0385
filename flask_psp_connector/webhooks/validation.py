"""Check the fields of a verified Stripe event before any effect reads them.

A valid signature proves who sent an event, not that each field has the type and range
the effects assume. A field that is wrong here (a negative or boolean amount, one
beyond any real payment, a NUL character, an id or type longer than the store keeps)
is a permanent problem: retrying cannot fix it, so the webhook answers 2xx and logs it
instead of failing on every one of Stripe's retries. Fields no effect reads (a
dispute's evidence texts, say) are only checked for NUL characters.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask_psp_connector.domain.money import MAX_CENT_AMOUNT

#: Largest amount accepted, in the currency's smallest unit (the operations' bound too).
MAX_AMOUNT = MAX_CENT_AMOUNT
#: Longest id accepted (the store's columns; Stripe's ids are far shorter).
MAX_ID_LENGTH = 255
#: Longest event type and payment method type the store keeps.
MAX_TYPE_LENGTH, MAX_METHOD_TYPE_LENGTH = 128, 64

_AMOUNTS = ("amount", "amount_received", "amount_capturable", "amount_refunded", "amount_captured")
_IDS = ("id", "payment_intent", "charge", "latest_charge", "customer", "payment_method")
_TEXTS = ("object", "status", "currency", "capture_method", "failure_reason", "setup_future_usage")


def event_problem(event: dict[str, Any]) -> str | None:
    """What makes ``event`` unusable, in words, or ``None`` when its fields are sound.

    ``event`` is a verified Stripe event (``id``, ``type`` and ``data.object`` present).
    """
    problem = _id_problem(event.get("id"), "id") or _id_problem(event.get("type"), "type", MAX_TYPE_LENGTH)
    if problem:
        return problem
    obj = event["data"]["object"]
    for where, value in _strings(event):
        if "\x00" in value:
            return f"{where} contains a NUL character"
    problem = _object_problem(obj, "data.object")
    if problem:
        return problem
    refunds = obj.get("refunds")
    if refunds is not None:
        listed = refunds.get("data") if isinstance(refunds, dict) else None
        if not isinstance(listed, list):
            return "data.object.refunds.data is not a list"
        for index, refund in enumerate(listed):
            if not isinstance(refund, dict):
                return f"data.object.refunds.data.{index} is not an object"
            problem = _object_problem(refund, f"data.object.refunds.data.{index}")
            if problem:
                return problem
    return None


def _object_problem(obj: dict[str, Any], where: str) -> str | None:
    for name in _AMOUNTS:
        value = obj.get(name)
        if value is not None and (type(value) is not int or not 0 <= value <= MAX_AMOUNT):
            return f"{where}.{name} is not a whole amount from 0 to {MAX_AMOUNT}"
    for name in _IDS:
        value = obj.get(name)
        if isinstance(value, dict):  # an expanded object
            value = value.get("id")
        if value is not None:
            problem = _id_problem(value, f"{where}.{name}")
            if problem:
                return problem
    for name in _TEXTS:
        value = obj.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > MAX_ID_LENGTH):
            return f"{where}.{name} is not a short string"
    currency = obj.get("currency")
    if currency is not None and not (len(currency) == 3 and currency.isascii() and currency.isalpha()):
        return f"{where}.currency is not a currency code"
    details = obj.get("payment_method_details")
    if details is not None:
        method = details.get("type") if isinstance(details, dict) else details
        if method is not None:
            problem = _id_problem(method, f"{where}.payment_method_details.type", MAX_METHOD_TYPE_LENGTH)
            if problem:
                return problem
    metadata = obj.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        return f"{where}.metadata is not an object"
    payment_id = (metadata or {}).get("ct_payment_id")
    if payment_id is not None:
        return _id_problem(payment_id, f"{where}.metadata.ct_payment_id")
    return None


def _id_problem(value: Any, where: str, longest: int = MAX_ID_LENGTH) -> str | None:
    if not isinstance(value, str) or not value:
        return f"{where} is not a non-empty string"
    if len(value) > longest:
        return f"{where} is longer than {longest} characters"
    if not value.isprintable():
        return f"{where} contains control characters"
    return None


def _strings(value: Any, where: str = "event") -> Iterator[tuple[str, str]]:
    """Every string in ``value`` (keys included) with where it is; iterative, so no
    nesting depth can exhaust the stack."""
    pending = [(where, value)]
    while pending:
        path, item = pending.pop()
        if isinstance(item, str):
            yield path, item
        elif isinstance(item, dict):
            for key, child in item.items():
                yield f"{path} key", key
                pending.append((f"{path}.{key}", child))
        elif isinstance(item, list):
            pending.extend((f"{path}.{index}", child) for index, child in enumerate(item))
