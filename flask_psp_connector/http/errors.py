"""Errors on the connector's routes, rendered in each protocol's body shape.

Every blueprint answers its callers in the shape they already read: the processor in
upstream's ``{"message", "statusCode", "errors"}``, the Commerce Layer gateway in its
``{"success": false, "data": {..., "error"}}`` and the Hantera routes in
``{"errors": [{"code", "message"}]}``. What an error means (status, code, message), how it
is logged and how a secret is kept out of both is decided once, by :class:`ErrorRenderer`;
a protocol only says how one error is written.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterator
from typing import Any

from flask import Blueprint, Response, jsonify, request
from marshmallow import fields
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from flask_psp_connector.errors import PSPError, ValidationFailed, error_body, redact

INTERNAL_MESSAGE = "Internal server error."


def json_response(body: dict[str, Any], status: int, headers: dict[str, str] | None = None) -> Response:
    """A JSON response carrying ``body`` with ``status``."""
    response = jsonify(body)
    response.status_code = status
    response.headers.update(headers or {})
    return response


class ErrorRenderer:
    """Turns the errors of one blueprint's routes into its protocol's answers.

    A subclass writes one error (:meth:`render`) and may read request validation its own
    way (:meth:`invalid_input`); :meth:`install` registers the handlers on a blueprint.
    """

    #: The code of an unexpected failure.
    internal_code = "internal_error"
    #: Where failures are logged.
    log = logging.getLogger("flask_psp_connector")

    def render(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
        """The protocol's answer for one error."""
        raise NotImplementedError

    def http_code(self, error: HTTPException) -> str:
        """The code of a werkzeug error (``Not Found`` → ``not_found``)."""
        return error.name.lower().replace(" ", "_")

    def invalid_input(self, messages: dict[str, Any]) -> Response:
        """The answer to a request its schema refused (webargs' messages, by location)."""
        return self.render(422, "invalid_payload", first_message(messages.get("json", messages)))

    def psp_error(self, error: PSPError) -> Response:
        """The answer to an error the connector raised on purpose (logged when it is a 5xx)."""
        if error.status >= 500:
            self.log.error("%s on %s %s: %s", type(error).__name__, request.method, request.path, error.message)
        return self.answer(error)

    def answer(self, error: PSPError) -> Response:
        """The protocol's answer for a connector error: its status, code and message."""
        return self.render(error.status, error.code, error.message)

    def http_exception(self, error: HTTPException) -> Response:
        """The answer to a werkzeug or webargs HTTP error."""
        data = getattr(error, "data", None) or {}
        if data.get("messages"):
            return self.invalid_input(data["messages"])
        headers = {}
        if isinstance(error, MethodNotAllowed) and error.valid_methods:
            headers["Allow"] = ", ".join(sorted(error.valid_methods))
        status = error.code or 500
        if status == 500:
            return self.render(status, self.internal_code, INTERNAL_MESSAGE, headers)
        return self.render(status, self.http_code(error), error.description or error.name, headers)

    def unexpected(self, error: Exception) -> Response:
        """Log an unexpected failure without its details leaking, and answer 500."""
        self.log.error("Unexpected %s on %s %s: %s", type(error).__name__, request.method, request.path, redact(str(error)))
        if self.log.isEnabledFor(logging.DEBUG):
            self.log.debug("Traceback of the unexpected error:\n%s", redact("".join(traceback.format_exception(error))))
        return self.render(500, self.internal_code, INTERNAL_MESSAGE)

    def handlers(self) -> dict[type[Exception], Callable[[Any], Response]]:
        """The error handlers, by the exception class each answers."""
        return {PSPError: self.psp_error, HTTPException: self.http_exception, Exception: self.unexpected}

    def install(self, blueprint: Blueprint) -> None:
        """Answer every error of ``blueprint``'s routes with this renderer."""
        for exception, handler in self.handlers().items():
            blueprint.register_error_handler(exception, handler)


def first_message(messages: Any, path: str = "") -> str:
    """``field.path: message`` for the first problem of webargs' or marshmallow's messages."""
    if isinstance(messages, dict) and messages:
        key, value = next(iter(messages.items()))
        if key == "_schema":
            return first_message(value, path)
        return first_message(value, f"{path}.{key}" if path else str(key))
    if isinstance(messages, list) and messages:
        if isinstance(messages[0], str):
            return f"{path}: {messages[0]}" if path else messages[0]
        return first_message(messages[0], path)
    return f"{path}: {messages}" if path else str(messages)


class UpstreamErrors(ErrorRenderer):
    """The processor's errors in the body of the official connector (``errors.error_body``);
    request validation is a 400 with ``RequiredField`` / ``InvalidField`` /
    ``InvalidJsonInput`` items, as upstream."""

    internal_code = "General"

    def render(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
        """``{"message", "statusCode", "errors": [{"code", "message"}]}``."""
        return json_response(error_body(status, [{"code": code, "message": message}]), status, headers)

    def http_code(self, error: HTTPException) -> str:
        """``Not Found`` → ``NotFound``."""
        return error.name.replace(" ", "")

    def answer(self, error: PSPError) -> Response:
        """The error's own body: it may carry several items and extra fields (auth, amounts)."""
        return json_response(error.to_body(), error.status)

    def invalid_input(self, messages: dict[str, Any]) -> Response:
        """Every problem as an item of a 400."""
        return self.psp_error(ValidationFailed(_validation_errors(messages) or [
            {"code": "InvalidJsonInput", "message": "Request body does not contain valid JSON."}
        ]))


_REQUIRED_MESSAGE = fields.Field.default_error_messages["required"]


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
    errors: list[dict[str, Any]] = []
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


class CommerceLayerErrors(ErrorRenderer):
    """The Commerce Layer external gateway's failure answer."""

    log = logging.getLogger("flask_psp_connector.gateways")

    #: The one route whose answers carry no transaction fields (it saves no transaction).
    token_endpoint = "customer_token"

    def render(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
        """``{"success": false, "data": {"transaction_token", "amount_cents", "error": {"code", "message"}}}``."""
        data: dict[str, Any] = {"error": {"code": code, "message": message}}
        if (request.endpoint or "").rpartition(".")[2] != self.token_endpoint:
            data = {"transaction_token": None, "amount_cents": None, **data}
        return json_response({"success": False, "data": data}, status, headers)


class HanteraErrors(ErrorRenderer):
    """The shape of Hantera's cart ingresses."""

    log = logging.getLogger("flask_psp_connector.gateways")

    def render(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
        """``{"errors": [{"code", "message"}]}``."""
        return json_response({"errors": [{"code": code, "message": message}]}, status, headers)
