"""Stripe webhook signatures: the ``Stripe-Signature`` header checked on the raw body."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import stripe


class WebhookSignatureError(Exception):
    """A webhook payload is not a Stripe event signed with one of our secrets."""


def verify_webhook(payload: bytes, header: str, secrets: Sequence[str], *, tolerance: int = 300) -> dict[str, Any]:
    """Check the ``Stripe-Signature`` header on the raw body and return the event.

    Any of ``secrets`` may have signed it (several are accepted during a rotation); the
    HMAC comparison is constant-time (stripe-python's ``verify_header``).

    :raises WebhookSignatureError: bad or expired signature, or a body that is not an event.
    """
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookSignatureError("The payload is not UTF-8.") from None
    # stripe-python only refuses old timestamps; one from the future is refused too.
    signed_at = _signed_at(header)
    if signed_at is not None and signed_at > time.time() + tolerance:
        raise WebhookSignatureError("Timestamp outside the tolerance zone")
    failure = "No signing secret matched."
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(text, header, secret, tolerance)
            break
        except stripe.SignatureVerificationError as exc:
            failure = str(exc.user_message or exc)
            if "tolerance" in failure:  # the signature matched this secret; only the time is wrong
                raise WebhookSignatureError(failure) from None
    else:
        raise WebhookSignatureError(failure)
    try:
        event = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        raise WebhookSignatureError("The payload is not JSON.") from None
    if not (
        isinstance(event, dict)
        and isinstance(event.get("id"), str)
        and isinstance(event.get("type"), str)
        and isinstance(event.get("data"), dict)
        and isinstance(event["data"].get("object"), dict)
    ):
        raise WebhookSignatureError("The payload is not a Stripe event.")
    return event


def _signed_at(header: str) -> int | None:
    """The ``t=`` timestamp of a ``Stripe-Signature`` header, if it has a readable one."""
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t" and value.isascii() and value.isdigit():
            return int(value)
    return None
