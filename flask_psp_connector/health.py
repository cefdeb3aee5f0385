"""The status report of ``/operations/status``: the store and Stripe, checked in parallel."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import datetime, timezone
from importlib.metadata import version
from typing import Any

from . import __version__

log = logging.getLogger("flask_psp_connector.health")

_executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="psp-health")


def check_status(checks: dict[str, Callable[[], None]], *, timeout: float) -> dict[str, Any]:
    """Run every check (a callable that raises on failure) and summarise.

    ``status`` is ``OK`` when all pass, ``Unavailable`` when none does, ``Partially
    Available`` otherwise. A check still running after ``timeout`` seconds counts as down.
    """
    futures = {name: _executor.submit(check) for name, check in checks.items()}
    wait(futures.values(), timeout=timeout)
    results = []
    for name, future in futures.items():
        if not future.done():
            results.append({"name": name, "status": "DOWN", "message": f"No answer within {timeout:g} s."})
        elif future.exception() is not None:
            log.warning("Status check %r failed: %s", name, type(future.exception()).__name__)
            results.append({"name": name, "status": "DOWN", "message": f"{name} is not reachable."})
        else:
            results.append({"name": name, "status": "UP", "message": f"{name} is working."})
    up = sum(result["status"] == "UP" for result in results)
    overall = "OK" if up == len(results) else "Unavailable" if up == 0 else "Partially Available"
    return {
        "status": overall,
        "timestamp": datetime.now(timezone.utc).isoformat(),
        "version": __version__,
        "metadata": {"name": "flask-psp-connector", "stripe": version("stripe")},
        "checks": results,
    }
