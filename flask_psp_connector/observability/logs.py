"""Log lines people can use: the request's correlation id on every line, JSON on request.

The connector logs through ``logging`` under ``flask_psp_connector.*`` and never
configures the root logger itself. An app shows those lines by calling
:func:`configure_logging` once (the demo shop does), or by adding
:class:`CorrelationFilter` (and :class:`JSONFormatter`) to its own handlers.

Lines about a Stripe event or a payment carry ``event_id``, ``event_type``,
``payment_id`` and ``outcome`` as record attributes (``extra``), which the JSON format
writes as fields.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from flask_psp_connector.observability import telemetry

#: Record attributes the JSON format writes when a line has them.
FIELDS = ("correlation_id", "event_id", "event_type", "payment_id", "payment_intent", "outcome")

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(correlation_id)s] %(message)s"


class CorrelationFilter(logging.Filter):
    """Puts the current request's correlation id on every record (``-`` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "correlation_id"):
            record.correlation_id = telemetry.correlation_id.get() or "-"
        return True


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the :data:`FIELDS` present."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in FIELDS:
            value = getattr(record, field, None)
            if value not in (None, "", "-"):
                line[field] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


_MARK = "_psp_handler"


def configure_logging(fmt: str = "text", level: int = logging.INFO) -> None:
    """Show INFO lines (the connector's included) on standard error, as ``text`` or ``json``.

    For apps and their run commands; idempotent (a second call replaces the handler).
    """
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    setattr(handler, _MARK, True)
    handler.addFilter(CorrelationFilter())
    handler.setFormatter(JSONFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(min(root.level or level, level))
