"""The status report of ``/operations/status``: the store and Stripe, checked in parallel."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from typing import Any

from flask_psp_connector.ports import CommercePlatform
from flask_psp_connector.version import __version__

log = logging.getLogger("flask_psp_connector.processor.health")

_executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="psp-health")


class CheckFailed(Exception):
    """A check's own account of what is wrong (shown as its message)."""


def webhook_health(platform: CommercePlatform) -> str:
    """Whether Stripe events are being applied: down while an event failed in the last hour
    and has not succeeded since; otherwise when the last one was received.

    :raises CheckFailed: naming the failing events.
    """
    now = datetime.now(UTC)
    failing = [f for f in platform.event_failures(50)
               if not f.resolved and f.last_seen is not None and now - f.last_seen < timedelta(hours=1)]
    if failing:
        raise CheckFailed(f"{len(failing)} event(s) failed in the last hour, e.g. {failing[0].event_id} "
                          f"({failing[0].event_type}).")
    recent = platform.recent_events(1)
    if not recent or recent[0].received_at is None:
        return "No Stripe event received yet."
    return f"Last Stripe event received at {recent[0].received_at.isoformat(timespec='seconds')}."


def check_status(checks: dict[str, Callable[[], str | None]], *, timeout: float) -> dict[str, Any]:
    """Run every check (a callable that raises on failure, and may return its message)
    and summarise.

    ``status`` is ``OK`` when all pass, ``Unavailable`` when none does, ``Partially
    Available`` otherwise. A check still running after ``timeout`` seconds counts as down.
    """
    futures = {name: _executor.submit(check) for name, check in checks.items()}
    wait(futures.values(), timeout=timeout)
    results = []
    for name, future in futures.items():
        if not future.done():
            results.append({"name": name, "status": "DOWN", "message": f"No answer within {timeout:g} s."})
        elif isinstance(future.exception(), CheckFailed):
            results.append({"name": name, "status": "DOWN", "message": str(future.exception())})
        elif future.exception() is not None:
            log.warning("Status check %r failed: %s", name, type(future.exception()).__name__)
            results.append({"name": name, "status": "DOWN", "message": f"{name} is not reachable."})
        else:
            results.append({"name": name, "status": "UP", "message": future.result() or f"{name} is working."})
    up = sum(result["status"] == "UP" for result in results)
    overall = "OK" if up == len(results) else "Unavailable" if up == 0 else "Partially Available"
    return {
        "status": overall,
        "timestamp": datetime.now(UTC).isoformat(),
        "version": __version__,
        "metadata": {"name": "flask-psp-connector", "stripe": version("stripe")},
        "checks": results,
    }
