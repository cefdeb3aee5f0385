"""What the connector does, measured: Prometheus metrics and OpenTelemetry spans (both optional).

Metrics need the ``metrics`` extra (prometheus-client) and an app that serves them
(``PSP_METRICS_PATH``); until then every call here is a flag check. Under several gunicorn
workers, set ``PROMETHEUS_MULTIPROC_DIR`` (the shipped ``gunicorn.conf.py`` does) and each
scrape adds up every worker's numbers.

Spans need the ``otel`` extra (opentelemetry-api). The connector only creates spans
through the API: the host app installs the SDK and its exporter; without them the spans
cost next to nothing.

Metric names (all prefixed ``psp_``) are listed in :data:`METRIC_NAMES`; the example alert
rules in ``examples/prometheus/alerts.yml`` are checked against them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

try:
    import prometheus_client
    from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess
    from prometheus_client.core import GaugeMetricFamily
except ImportError:  # the metrics extra is not installed
    prometheus_client = None  # type: ignore[assignment]

try:
    from opentelemetry import trace as otel_trace
except ImportError:  # the otel extra is not installed
    otel_trace = None  # type: ignore[assignment]

#: Every metric the connector exports (without the ``_total``/``_bucket``/... suffixes).
METRIC_NAMES = (
    "psp_http_requests",
    "psp_http_request_duration_seconds",
    "psp_webhook_events",
    "psp_webhook_event_lag_seconds",
    "psp_payments",
    "psp_external_calls",
    "psp_external_call_duration_seconds",
    "psp_outbox_depth",
    "psp_outbox_oldest_age_seconds",
)

#: The correlation id of the request being served, passed on to the platform's API.
correlation_id: ContextVar[str | None] = ContextVar("psp_correlation_id", default=None)

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_LAG_BUCKETS = (1, 5, 15, 30, 60, 300, 900, 3600, 21600, 86400)


class _Metrics:
    """The metric objects of this process, created once when an app enables metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.requests = Counter("psp_http_requests", "HTTP requests answered, by route and status.",
                                ["route", "method", "status"], registry=registry)
        self.request_seconds = Histogram("psp_http_request_duration_seconds", "Time to answer an HTTP request.",
                                         ["route", "method"], buckets=_LATENCY_BUCKETS, registry=registry)
        self.events = Counter("psp_webhook_events", "Stripe events received, by type and outcome "
                              "(applied, duplicate, ignored, failed).", ["type", "outcome"], registry=registry)
        self.event_lag = Histogram("psp_webhook_event_lag_seconds", "Receipt time minus the event's created time.",
                                   ["type"], buckets=_LAG_BUCKETS, registry=registry)
        self.payments = Counter("psp_payments", "Payment outcomes (succeeded, failed, canceled, flagged).",
                                ["outcome"], registry=registry)
        self.calls = Counter("psp_external_calls", "Calls to Stripe and to the commerce platform, by status.",
                             ["service", "operation", "status"], registry=registry)
        self.call_seconds = Histogram("psp_external_call_duration_seconds", "Time a call to Stripe or the "
                                      "platform took.", ["service", "operation"], buckets=_LATENCY_BUCKETS,
                                      registry=registry)


_metrics: _Metrics | None = None


def enable_metrics() -> None:
    """Start recording metrics in this process (idempotent).

    :raises RuntimeError: when prometheus-client is not installed.
    """
    global _metrics
    if prometheus_client is None:
        raise RuntimeError("Metrics need prometheus-client: pip install 'flask-psp-connector[metrics]'.")
    if _metrics is None:
        _metrics = _Metrics()


def metrics_enabled() -> bool:
    """Whether this process records metrics."""
    return _metrics is not None


def record_request(route: str, method: str, status: int, seconds: float) -> None:
    """One HTTP request answered."""
    if _metrics is not None:
        _metrics.requests.labels(route, method, str(status)).inc()
        _metrics.request_seconds.labels(route, method).observe(seconds)


def record_event(event_type: str, outcome: str, created: Any) -> None:
    """One Stripe event received: ``outcome`` is applied, duplicate, ignored or failed."""
    if _metrics is None:
        return
    _metrics.events.labels(event_type, outcome).inc()
    if type(created) is int and outcome != "duplicate":
        _metrics.event_lag.labels(event_type).observe(max(time.time() - created, 0.0))


def record_payment(outcome: str) -> None:
    """A payment reached an outcome: succeeded, failed, canceled or flagged (stale)."""
    if _metrics is not None:
        _metrics.payments.labels(outcome).inc()


@contextmanager
def external_call(service: str, operation: str) -> Iterator[None]:
    """Time one call to Stripe or to the platform (and trace it as a child span).

    The status is ``ok`` or the name of the exception that ended the call.
    """
    span = _tracer().start_as_current_span(f"{service} {operation}", attributes={
        "psp.service": service, "psp.operation": operation}) if otel_trace is not None else None
    started = time.perf_counter()
    status = "ok"
    try:
        if span is None:
            yield
        else:
            with span:
                yield
    except BaseException as exc:
        status = type(exc).__name__
        raise
    finally:
        if _metrics is not None:
            _metrics.calls.labels(service, operation, status).inc()
            _metrics.call_seconds.labels(service, operation).observe(time.perf_counter() - started)


def instrumented(service: str) -> Callable[[type], type]:
    """Class decorator: every public method's call is an :func:`external_call` named after it."""

    def decorate(cls: type) -> type:
        for name, method in list(vars(cls).items()):
            if callable(method) and not name.startswith("_"):
                setattr(cls, name, _observed(service, name, method))
        return cls

    return decorate


def _observed(service: str, operation: str, method: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        with external_call(service, operation):
            return method(*args, **kwargs)

    call.__name__, call.__qualname__, call.__doc__ = method.__name__, method.__qualname__, method.__doc__
    call.__wrapped__ = method  # type: ignore[attr-defined]
    return call


def exposition(extra: Callable[[], list[Any]] | None = None) -> tuple[bytes, str]:
    """The metrics in Prometheus' text format (every worker's, in multiprocess mode), and
    their content type. ``extra`` adds gauges read at scrape time (the outbox's)."""
    if _metrics is None:
        raise RuntimeError("Metrics are not enabled.")
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry = _metrics.registry
    body = prometheus_client.generate_latest(registry)
    if extra is not None:
        body += prometheus_client.generate_latest(_Scraped(extra))
    return body, prometheus_client.CONTENT_TYPE_LATEST


class _Scraped:
    """A collector whose values are read when Prometheus scrapes (not kept per worker)."""

    def __init__(self, read: Callable[[], list[Any]]) -> None:
        self._read = read

    def collect(self) -> list[Any]:
        return self._read()


def outbox_gauges(depth: int, oldest_age: float) -> list[Any]:
    """The Commerce Layer callback outbox's backlog as gauges."""
    depth_gauge = GaugeMetricFamily("psp_outbox_depth", "Callbacks waiting in the outbox.")
    depth_gauge.add_metric([], depth)
    age_gauge = GaugeMetricFamily("psp_outbox_oldest_age_seconds", "Age of the oldest callback waiting.")
    age_gauge.add_metric([], oldest_age)
    return [depth_gauge, age_gauge]


# -- traces ------------------------------------------------------------------------------------------


def _tracer() -> Any:
    return otel_trace.get_tracer("flask_psp_connector")


def start_request_span(name: str, attributes: dict[str, Any]) -> Any:
    """Open the span of one HTTP request and make it current; returns what ends it."""
    if otel_trace is None:
        return None
    from opentelemetry import context

    span = _tracer().start_span(name, kind=otel_trace.SpanKind.SERVER, attributes=attributes)
    token = context.attach(otel_trace.set_span_in_context(span))
    return span, token


def end_request_span(handle: Any, status: int) -> None:
    """Close the span :func:`start_request_span` opened."""
    if handle is None:
        return
    from opentelemetry import context

    span, token = handle
    span.set_attribute("http.status_code", status)
    if status >= 500:
        span.set_status(otel_trace.Status(otel_trace.StatusCode.ERROR))
    span.end()
    context.detach(token)


def annotate(**attributes: str | None) -> None:
    """Put ids (payment, event, PaymentIntent) on the current request's span."""
    if otel_trace is None:
        return
    span = otel_trace.get_current_span()
    for key, value in attributes.items():
        if value:
            span.set_attribute(f"psp.{key}", value)
