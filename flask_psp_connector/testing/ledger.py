"""The double's state, its Events, and their delivery as Stripe signs and sends them.

Events are kept for ``GET /v1/events`` and sent, in the order they happened, to every
enabled webhook endpoint (``/v1/webhook_endpoints``, signed with the secret Stripe
returned on creation) and every ``/_config/webhooks/<name>`` registration (signed with
the secret given there; the sandbox uses it to honour ``STRIPE_WEBHOOK_SIGNING_SECRET``).
A delivery answered with anything but 2xx is tried again, twice, as Stripe retries.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import itertools
import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import stripe

log = logging.getLogger("flask_psp_connector.testing")

API_VERSION: str = stripe.api_version
_RETRY_DELAYS = (0.5, 1.5)


_sequence = itertools.count()


def stamped(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` with its creation time (and a tie-breaker for objects of the same second)."""
    obj["created"] = int(time.time())
    obj["_seq"] = next(_sequence)
    return obj


def new_id(prefix: str) -> str:
    """An object id in Stripe's style: a prefix and 24 random characters."""
    return f"{prefix}_{secrets.token_urlsafe(18).replace('-', 'x').replace('_', 'y')[:24]}"


class StripeError(Exception):
    """An API error answered with Stripe's body: ``{"error": {"type", "message", ...}}``."""

    def __init__(self, status: int, message: str, *, type_: str = "invalid_request_error", **fields: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": {"type": type_, "message": message, **{k: v for k, v in fields.items() if v is not None}}}


def missing(kind: str, object_id: str) -> StripeError:
    """Stripe's 404 for an unknown object."""
    return StripeError(404, f"No such {kind}: '{object_id}'", code="resource_missing", param="id")


@dataclass
class Registration:
    """Where and how one webhook receiver gets events."""

    url: str
    secret: str
    events: list[str] | None  # None or "*" in the list: every event


@dataclass
class Ledger:
    """Every object the additions own, by id, and the event log."""

    intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    charges: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    disputes: dict[str, dict[str, Any]] = field(default_factory=dict)
    balance_transactions: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    customer_sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    registrations: dict[str, Registration] = field(default_factory=dict)
    request: dict[str, Any] = field(default_factory=dict)  # the API request being served
    _queue: asyncio.Queue[dict[str, Any]] | None = None

    def clear(self) -> None:
        """Forget every object and event (registrations and endpoints stay, as in localstripe)."""
        for objects in (self.intents, self.charges, self.refunds, self.disputes, self.balance_transactions, self.events,
                        self.customer_sessions):
            objects.clear()

    def emit(self, event_type: str, obj: dict[str, Any], previous: dict[str, Any] | None = None) -> dict[str, Any]:
        """Record the event ``event_type`` about ``obj`` (a snapshot) and queue its delivery."""
        event: dict[str, Any] = stamped({
            "id": new_id("evt"), "object": "event", "api_version": API_VERSION,
            "data": {"object": copy.deepcopy(obj)}, "livemode": False, "pending_webhooks": 0,
            "request": {"id": self.request.get("id"), "idempotency_key": self.request.get("idempotency_key")},
            "type": event_type,
        })
        if previous:
            event["data"]["previous_attributes"] = copy.deepcopy(previous)
        receivers = self._receivers(event_type)
        event["pending_webhooks"] = len(receivers)
        self.events[event["id"]] = event
        if receivers:
            self._start().put_nowait(event)
        return event

    def _receivers(self, event_type: str) -> list[Registration]:
        found = [r for r in self.registrations.values() if r.events is None or event_type in r.events or "*" in r.events]
        for endpoint in self.endpoints.values():
            wanted = endpoint["enabled_events"]
            if endpoint["status"] == "enabled" and ("*" in wanted or event_type in wanted):
                found.append(Registration(endpoint["url"], endpoint["_secret"], None))
        return found

    def _start(self) -> asyncio.Queue[dict[str, Any]]:
        if self._queue is None:
            self._queue = asyncio.Queue()
            asyncio.get_running_loop().create_task(self._deliver_forever(self._queue))
        return self._queue

    async def _deliver_forever(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        import aiohttp

        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            while True:
                event = await queue.get()
                await asyncio.sleep(0.05)  # after the API answer that caused it, as with Stripe
                for receiver in self._receivers(event["type"]):
                    await self._deliver(session, receiver, event)

    async def _deliver(self, session: Any, receiver: Registration, event: dict[str, Any]) -> None:
        payload = json.dumps(public(event), indent=2).encode()
        for delay in (0.0, *_RETRY_DELAYS):
            await asyncio.sleep(delay)
            stamp = int(time.time())
            signature = hmac.new(receiver.secret.encode(), b"%d.%s" % (stamp, payload), hashlib.sha256).hexdigest()
            headers = {"Content-Type": "application/json; charset=utf-8", "Stripe-Signature": f"t={stamp},v1={signature}",
                       "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)"}
            try:
                async with session.post(receiver.url, data=payload, headers=headers) as answer:
                    if 200 <= answer.status < 300:
                        return
                    log.info("webhook %s (%s) to %s: %d", event["id"], event["type"], receiver.url, answer.status)
            except Exception as error:  # noqa: BLE001 - any failure to deliver is retried, as Stripe does
                log.info("webhook %s (%s) to %s failed: %s", event["id"], event["type"], receiver.url, error)


#: The one ledger of the running double.
ledger = Ledger()


def listed(objects: list[dict[str, Any]], url: str, query: dict[str, Any]) -> dict[str, Any]:
    """A page of ``objects`` (newest first) as Stripe lists them: ``limit`` (1-100, default
    10), ``starting_after``/``ending_before`` cursors and ``created`` range filters."""
    created = query.get("created")
    if isinstance(created, dict):
        bounds = {"gt": int.__gt__, "gte": int.__ge__, "lt": int.__lt__, "lte": int.__le__}
        for key, value in created.items():
            if key not in bounds:
                raise StripeError(400, f"Received unknown parameter: created[{key}]", code="parameter_unknown")
            objects = [o for o in objects if bounds[key](o["created"], _int(value, f"created[{key}]"))]
    elif created is not None:
        objects = [o for o in objects if o["created"] == _int(created, "created")]
    objects = sorted(objects, key=lambda o: (o["created"], o.get("_seq", 0)), reverse=True)
    limit = _int(query.get("limit", 10), "limit")
    if not 1 <= limit <= 100:
        raise StripeError(400, "Invalid integer: limit must be between 1 and 100", code="parameter_invalid_integer",
                          param="limit")
    ids = [o["id"] for o in objects]
    if query.get("starting_after"):
        objects = objects[ids.index(query["starting_after"]) + 1:] if query["starting_after"] in ids else []
    elif query.get("ending_before"):
        objects = objects[:ids.index(query["ending_before"])][-limit:] if query["ending_before"] in ids else []
    return {"object": "list", "url": url, "has_more": len(objects) > limit, "data": [public(o) for o in objects[:limit]]}


def public(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` without the double's private fields (those starting with ``_``)."""
    return {k: copy.deepcopy(v) for k, v in obj.items() if not k.startswith("_")}


def _int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise StripeError(400, f"Invalid integer: {value}", code="parameter_invalid_integer", param=name) from None
