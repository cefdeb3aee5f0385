"""The HTTP side of :mod:`.telemetry`: request metrics and spans, correlation ids, ``/metrics``.

Registered by :class:`~flask_psp_connector.PSPConnector`. Every request gets a correlation
id (``X-Correlation-ID``, else ``X-Request-ID``, else a new one), returned in the response,
put on log lines (:mod:`.logs`), on the connector's request spans and passed on to
commercetools; with ``PSP_METRICS_PATH`` set, every request is counted and timed by route.
"""

from __future__ import annotations

import hmac
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, g, request

from flask_psp_connector.observability import telemetry
from flask_psp_connector.state import connector_state

_CORRELATION = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def init_monitoring(app: Flask, is_connector_request: Callable[[], bool], metrics_path: str, token: str) -> None:
    """Register the hooks on ``app``, and ``metrics_path`` when metrics are on (behind
    ``Authorization: Bearer <token>`` when a token is set)."""
    app.before_request(lambda: _start(is_connector_request))
    app.after_request(_finish)
    app.teardown_request(_teardown)
    if metrics_path:
        telemetry.enable_metrics()
        app.add_url_rule(metrics_path, "psp_metrics", lambda: _metrics_view(token))


def _start(is_connector_request: Callable[[], bool]) -> None:
    g.psp_started = time.perf_counter()
    given = request.headers.get("X-Correlation-ID") or request.headers.get("X-Request-ID") or ""
    g.psp_correlation_id = given if _CORRELATION.match(given) else uuid.uuid4().hex
    g.psp_correlation_token = telemetry.correlation_id.set(g.psp_correlation_id)
    if not is_connector_request():
        return
    route = request.url_rule.rule if request.url_rule is not None else "unmatched"
    g.psp_span = telemetry.start_request_span(f"{request.method} {route}", {
        "http.method": request.method, "http.route": route, "psp.correlation_id": g.psp_correlation_id})


def _finish(response: Response) -> Response:
    if "psp_correlation_id" in g:
        response.headers["X-Correlation-ID"] = g.psp_correlation_id
    if telemetry.metrics_enabled() and "psp_started" in g:
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        telemetry.record_request(route, request.method, response.status_code, time.perf_counter() - g.psp_started)
    g.psp_status = response.status_code
    return response


def _teardown(error: BaseException | None) -> None:
    if "psp_span" in g:
        telemetry.end_request_span(g.pop("psp_span"), g.get("psp_status", 500 if error else 200))
    if "psp_correlation_token" in g:
        telemetry.correlation_id.reset(g.pop("psp_correlation_token"))


def _metrics_view(token: str) -> Response:
    given = request.headers.get("Authorization", "")
    if token and not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return Response("Unauthorized\n", status=401, mimetype="text/plain",
                        headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    body, content_type = telemetry.exposition(_outbox_gauges)
    return Response(body, content_type=content_type, headers={"Cache-Control": "no-store"})


def _outbox_gauges() -> list[Any]:
    gateway = connector_state().commercelayer
    if gateway is None:
        return []
    depth, oldest = gateway.store.backlog()
    age = (datetime.now(UTC) - oldest).total_seconds() if oldest is not None else 0.0
    return telemetry.outbox_gauges(depth, age)
