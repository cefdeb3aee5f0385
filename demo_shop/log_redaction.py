"""Keep secrets out of log lines.

Stripe appends ``payment_intent_client_secret`` to the return URL, so the request line
of ``/return`` (and the ``Referer`` of what that page loads) carries a client secret
that any server logging request lines would write down. :func:`redact_line` masks the
values of query parameters named like a secret, anything shaped like a Stripe client
secret, and Stripe keys; :class:`RedactingFilter` applies it to every record of a logger.
"""

from __future__ import annotations

import logging
import re

from flask_psp_connector.errors import redact

#: A query parameter whose name says it carries a credential; its value is masked.
_SECRET_PARAMETER = re.compile(
    r"((?:^|[?&;\s\"'])[A-Za-z0-9_.\-\[\]%]*(?:secret|token|password|passwd|session|key)[A-Za-z0-9_.\-\[\]%]*=)"
    r"[^&\s\"']*",
    re.IGNORECASE,
)
#: Stripe client secrets (PaymentIntent, SetupIntent, Checkout Session) and ephemeral keys.
_CLIENT_SECRET = re.compile(r"\b(?:[a-z]+_[A-Za-z0-9]+_secret_[A-Za-z0-9]+|ek_(?:test|live)_[A-Za-z0-9_]+)")

REDACTED = "[redacted]"


def redact_line(text: str) -> str:
    """``text`` with credentials in URLs, client secrets and Stripe keys masked."""
    text = _SECRET_PARAMETER.sub(lambda match: match.group(1) + REDACTED, text)
    return redact(_CLIENT_SECRET.sub(REDACTED, text))


class RedactingFilter(logging.Filter):
    """A logging filter that redacts each record's final message (arguments included)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact_line(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
