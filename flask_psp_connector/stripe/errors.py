"""Stripe's exceptions as the connector's errors, and Stripe's log lines without secrets."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import stripe

from flask_psp_connector.errors import StripeAPIError, redact


class _RedactSecrets(logging.Filter):
    """stripe-python logs Stripe's error messages, which may quote a key: mask them."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact(record.getMessage()), ()
        return True


def redact_stripe_logs() -> None:
    """Mask secrets in stripe-python's log lines (once per process, however often it is called)."""
    logger = logging.getLogger("stripe")
    if not any(isinstance(existing, _RedactSecrets) for existing in logger.filters):
        logger.addFilter(_RedactSecrets())


@contextmanager
def translated_errors() -> Iterator[None]:
    try:
        yield
    except stripe.StripeError as exc:
        error = exc.error
        transient = isinstance(exc, (stripe.APIConnectionError, stripe.RateLimitError)) or (
            exc.http_status is not None and exc.http_status >= 500
        )
        raise StripeAPIError(
            exc.user_message or "Stripe could not process the request.",
            code=getattr(error, "code", None) or exc.code,
            status=exc.http_status or 502,
            decline_code=getattr(error, "decline_code", None),
            transient=transient,
        ) from None
