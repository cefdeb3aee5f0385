"""gunicorn's logger with secrets redacted from the access and error logs.

The access log writes each request line and ``Referer``; both can carry a Stripe client
secret (see :mod:`demo_shop.log_redaction`). ``gunicorn.conf.py`` selects this class.
"""

from __future__ import annotations

from typing import Any

from gunicorn.glogging import Logger

from demo_shop.log_redaction import RedactingFilter


class RedactingLogger(Logger):
    """gunicorn's default logger, whose error and access logs pass through :class:`RedactingFilter`."""

    def setup(self, cfg: Any) -> None:
        """Configure as gunicorn does, then add the filter once to each log."""
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            if not any(isinstance(existing, RedactingFilter) for existing in log.filters):
                log.addFilter(RedactingFilter())
