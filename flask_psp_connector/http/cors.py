"""CORS for the processor: the browser enabler runs on the storefront's origin."""

from __future__ import annotations

from collections.abc import Callable

from flask import Response, request

from flask_psp_connector.state import connector_state

#: Headers the browser enabler sends (upstream's list plus the request ids).
ALLOWED_HEADERS = (
    "Content-Type",
    "Authorization",
    "X-Session-Id",
    "X-Correlation-ID",
    "X-Request-ID",
    "x-express-checkout",
    "x-express-customer-session",
)


#: The ``ALLOWED_ORIGINS`` entry that stands for the app's own origin.
SELF = "self"


def resolve_origins(origins: tuple[str, ...]) -> tuple[str, ...]:
    """The configured origins with ``self`` replaced by this request's own origin."""
    if SELF not in origins:
        return origins
    own = f"{request.scheme}://{request.host}"
    return tuple(own if origin == SELF else origin for origin in origins)


def cors_headers(allowed_origins: Callable[[], tuple[str, ...]]) -> Callable[[Response], Response]:
    """An ``after_request`` hook adding CORS headers for allowed origins.

    :param allowed_origins: returns the configured origins; empty allows any origin,
        ``self`` stands for the app's own origin.
    """

    def add_headers(response: Response) -> Response:
        origins = resolve_origins(allowed_origins())
        if origins:
            # The answer depends on the Origin header, so caches must key on it.
            response.vary.add("Origin")
        origin = request.headers.get("Origin")
        if not origin or (origins and origin not in origins):
            return response
        response.headers["Access-Control-Allow-Origin"] = origin if origins else "*"
        if request.method == "OPTIONS":
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
            response.headers["Access-Control-Allow-Headers"] = ", ".join(ALLOWED_HEADERS)
            response.headers["Access-Control-Max-Age"] = "600"
        return response

    return add_headers


def _configured_origins() -> tuple[str, ...]:
    origins: tuple[str, ...] = connector_state().settings["ALLOWED_ORIGINS"]
    return origins


#: The ``after_request`` hook of the routes the storefront calls (processor, Hantera):
#: CORS headers for the configured ``ALLOWED_ORIGINS``.
storefront_cors = cors_headers(_configured_origins)
