"""Commerce Layer's request signature: Base64 of HMAC-SHA256 over the raw body."""

from __future__ import annotations

import base64
import hashlib
import hmac

#: The header carrying the signature, in both directions.
SIGNATURE_HEADER = "X-CommerceLayer-Signature"


def sign(body: bytes, secret: str) -> str:
    """The signature of ``body`` (the exact bytes sent) with the shared ``secret``."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def is_signed(body: bytes, signature: str | None, secret: str) -> bool:
    """Whether ``signature`` is the signature of ``body``, compared in constant time."""
    if not signature or not secret:
        return False
    return hmac.compare_digest(sign(body, secret).encode(), signature.strip().encode())
