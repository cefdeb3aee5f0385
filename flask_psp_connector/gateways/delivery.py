"""Delivery of the callback outbox: signed POSTs to the platform, retried with backoff.

A callback is stored (``psp_gateway_callbacks``) in the same transaction that settles its
action, and stays there until the platform answers 2xx. Delivery is driven by
``flask psp gateways deliver`` (run it from a scheduler or ``--loop`` in a worker
process) and tried once right after the webhook that settled the action, once its
response is sent. Each attempt first moves the callback's next attempt forward by the
backoff, so a worker that dies mid-delivery leaves it to a later run; several workers
never deliver the same attempt twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import requests

from flask_psp_connector.errors import redact
from flask_psp_connector.gateways.commercelayer.signature import SIGNATURE_HEADER, sign
from flask_psp_connector.gateways.store import Callback, GatewayStore
from flask_psp_connector.platforms.embedded.schema import utcnow

log = logging.getLogger("flask_psp_connector.gateways")

#: Seconds before the second attempt; doubled after each failure, up to the maximum.
FIRST_RETRY, MAX_RETRY = 30, 3600
#: Seconds the platform has to answer one callback.
TIMEOUT = 10


def backoff(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed attempt (30 s, 1 min, 2 min, ... 1 h)."""
    return timedelta(seconds=min(FIRST_RETRY * 2 ** max(attempts - 1, 0), MAX_RETRY))


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """How many callbacks one run delivered, and how many failed (and will be retried)."""

    delivered: int = 0
    failed: int = 0


#: Deliveries share one pooled session: a gateway's callbacks go to the same few hosts,
#: and a kept-alive connection saves each one a TCP (and TLS) handshake.
_POOLED = requests.Session()


def deliver_due(store: GatewayStore, secret: str, *, now: datetime | None = None, limit: int = 100,
                http: requests.Session | None = None) -> DeliveryReport:
    """Attempt every callback due at ``now``."""
    now = now or utcnow()
    delivered = failed = 0
    for callback in store.due_callbacks(now, limit):
        outcome = deliver(store, callback, secret, now=now, http=http)
        if outcome is True:
            delivered += 1
        elif outcome is False:
            failed += 1
    return DeliveryReport(delivered, failed)


def deliver(store: GatewayStore, callback: Callback, secret: str, *, now: datetime | None = None,
            http: requests.Session | None = None) -> bool | None:
    """One attempt at ``callback``: True if accepted, False if it failed, None if another
    worker had claimed it."""
    now = now or utcnow()
    if not store.claim(callback, now + backoff(callback.attempts + 1)):
        return None
    body = callback.payload.encode()
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(body, secret)}
    try:
        response = (http or _POOLED).post(callback.url, data=body, headers=headers, timeout=TIMEOUT)
    except requests.RequestException as exc:
        error = f"{type(exc).__name__}: {redact(str(exc))}"
    else:
        if 200 <= response.status_code < 300:
            store.mark_delivered(callback.action_id)
            log.info("Callback for %s delivered (attempt %d).", callback.action_id, callback.attempts + 1)
            return True
        error = f"HTTP {response.status_code}"
    store.mark_failed(callback.action_id, error)
    log.warning("Callback for %s failed (attempt %d): %s", callback.action_id, callback.attempts + 1, error)
    return False
