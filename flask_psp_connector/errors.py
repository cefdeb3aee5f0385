"""The connector's errors: one flat hierarchy with structured fields.

Every error knows its HTTP status, its upstream error ``code`` and extra fields, so the
processor can answer in the upstream body without parsing messages::

    {"message": "...", "statusCode": 400, "errors": [{"code": "...", "message": "...", ...}]}
"""

from __future__ import annotations

import re
from typing import Any

_SECRET_PATTERN = re.compile(r"\b(sk|rk|whsec)_[A-Za-z0-9_]+")


def redact(text: str) -> str:
    """Mask anything that looks like a Stripe secret or signing secret in ``text``."""
    return _SECRET_PATTERN.sub(lambda m: f"{m.group(1)}_***", text)


class PSPError(Exception):
    """Base class of every error the connector raises on purpose.

    :param message: human-readable explanation, safe to return to the caller.
    :param code: machine-readable code, upstream's vocabulary.
    :param status: HTTP status the processor answers with.
    :param fields: extra members of the upstream ``errors[0]`` object.
    """

    status: int = 500
    code: str = "General"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        fields: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = redact(message)
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.fields = fields or {}

    def to_body(self) -> dict[str, Any]:
        """Render the upstream error body."""
        return error_body(self.status, [{"code": self.code, "message": self.message, **self.fields}])


class InvalidOperation(PSPError):
    """The request is well-formed but not allowed in the current state."""

    status = 400
    code = "InvalidOperation"


class ValidationFailed(PSPError):
    """The request does not match the route's schema."""

    status = 400
    code = "InvalidJsonInput"

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors[0]["message"], code=errors[0]["code"])
        self.errors = errors

    def to_body(self) -> dict[str, Any]:
        """Render every validation problem, not only the first."""
        return error_body(self.status, self.errors)


class ResourceNotFound(PSPError):
    """A cart, payment or other resource does not exist (or is not the caller's)."""

    status = 404
    code = "ResourceNotFound"


class ConcurrentModification(PSPError):
    """A write lost an optimistic-version race more times than we retry."""

    status = 409
    code = "ConcurrentModification"


class AuthError(PSPError):
    """The caller's credential is missing or not accepted.

    Renders upstream's auth body, which adds ``error`` and ``error_description``.
    """

    status = 401
    code = "invalid_token"

    def to_body(self) -> dict[str, Any]:
        """Render the upstream auth error body."""
        body = super().to_body()
        body.update(error=self.code, error_description=self.message)
        return body


class StripeAPIError(PSPError):
    """Stripe refused or failed a call; keeps Stripe's code and HTTP status.

    :param decline_code: Stripe's ``decline_code`` for card declines, if any.
    :param transient: True for network failures and 5xx worth retrying.
    """

    code = "StripeError"

    def __init__(
        self,
        message: str,
        *,
        code: str | None,
        status: int | None,
        decline_code: str | None = None,
        transient: bool = False,
    ) -> None:
        super().__init__(message, code=code or self.code, status=status or 502)
        self.decline_code = decline_code
        self.transient = transient


class PlatformUnavailable(PSPError):
    """The commerce platform's store cannot be reached; worth retrying."""

    status = 503
    code = "ServiceUnavailable"


class ConfigurationError(RuntimeError):
    """A configuration key holds an invalid value; raised at start-up.

    :param key: the configuration key at fault.
    """

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key


def error_body(status: int, errors: list[dict[str, Any]]) -> dict[str, Any]:
    """Build ``{"message", "statusCode", "errors"}`` from a list of error objects."""
    return {"message": errors[0]["message"], "statusCode": status, "errors": errors}
