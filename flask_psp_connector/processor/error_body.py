"""Turn every error on the connector's routes into the upstream JSON error body."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator
from typing import Any

from flask import Response, jsonify, request
from marshmallow import fields
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from flask_psp_connector.errors import PSPError, ValidationFailed, error_body, redact

log = logging.getLogger("flask_psp_connector")

_REQUIRED_MESSAGE = fields.Field.default_error_messages["required"]


def json_error(body: dict[str, Any], status: int, headers: dict[str, str] | None = None) -> Response:
    """A JSON response carrying ``body`` with ``status``."""
    response = jsonify(body)
    response.status_code = status
    response.headers.update(headers or {})
    return response


def handle_psp_error(error: PSPError) -> Response:
    """Render a connector error in the upstream body with its own status."""
    if error.status >= 500:
        log.error("%s on %s %s: %s", type(error).__name__, request.method, request.path, error.message)
    return json_error(error.to_body(), error.status)


def _flatten(messages: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(messages, dict):
        for key, value in messages.items():
            yield from _flatten(value, f"{path}.{key}" if path and key != "_schema" else path or str(key))
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        for message in messages:
            yield path, message
    elif isinstance(messages, list):
        for index, value in enumerate(messages):
            yield from _flatten(value, f"{path}.{index}")


def _validation_errors(messages: dict[str, Any]) -> list[dict[str, Any]]:
    errors = []
    for location, problems in messages.items():
        for field, message in _flatten(problems):
            if message == _REQUIRED_MESSAGE:
                errors.append(
                    {"code": "RequiredField", "message": f"A value is required for field {field}.", "field": field}
                )
            elif field in ("", "_schema") or message.startswith("Invalid JSON"):
                errors.append(
                    {
                        "code": "InvalidJsonInput",
                        "message": "Request body does not contain valid JSON.",
                        "detailedErrorMessage": message,
                    }
                )
            else:
                errors.append(
                    {
                        "code": "InvalidField",
                        "message": f"The value is not valid for field {field}: {message}",
                        "field": field,
                        "location": location,
                    }
                )
    return errors


def handle_http_exception(error: HTTPException) -> Response:
    """Render werkzeug and webargs HTTP errors in the upstream body.

    Request validation (webargs' 422, or 400 for unreadable JSON) becomes a 400 with
    ``RequiredField`` / ``InvalidField`` / ``InvalidJsonInput`` items, as upstream.
    """
    data = getattr(error, "data", None) or {}
    if "messages" in data:
        return handle_psp_error(ValidationFailed(_validation_errors(data["messages"]) or [
            {"code": "InvalidJsonInput", "message": "Request body does not contain valid JSON."}
        ]))
    headers = {}
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        headers["Allow"] = ", ".join(sorted(error.valid_methods))
    status = error.code or 500
    code = error.name.replace(" ", "") if status != 500 else "General"
    message = error.description if status != 500 else "Internal server error."
    return json_error(error_body(status, [{"code": code, "message": message}]), status, headers)


def handle_unexpected(error: Exception) -> Response:
    """Log an unexpected failure without its details leaking, and answer 500 General."""
    log.error("Unexpected %s on %s %s: %s", type(error).__name__, request.method, request.path, redact(str(error)))
    if log.isEnabledFor(logging.DEBUG):
        log.debug("Traceback of the unexpected error:\n%s", redact("".join(traceback.format_exception(error))))
    return json_error(error_body(500, [{"code": "General", "message": "Internal server error."}]), 500)
