"""The inbox of processed Stripe events, and the record of failed ones, in custom objects.

An event id is recorded *after* the event's effects, so a crash in between means
Stripe's retry applies them again, which the transaction matching rule makes harmless:
effects are at least once, their result exactly once. A failed delivery is kept in its
own container with its payload, so operators can list and replay it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace

from flask_psp_connector.auth.oauth_client import JSON
from flask_psp_connector.domain.inbox import EventFailure, EventReceipt, EventStatus
from flask_psp_connector.errors import ConcurrentModification, ResourceNotFound
from flask_psp_connector.platforms.commercetools.client import CommercetoolsClient, malformed
from flask_psp_connector.platforms.commercetools.mapping import dig, integer, now, parsed, quoted, timestamp
from flask_psp_connector.platforms.commercetools.resources import Retrying

#: The inbox of processed Stripe events (custom objects).
EVENT_CONTAINER = "psp-stripe-events"
#: Stripe events whose processing failed (custom objects), for operators and replays.
FAILURE_CONTAINER = "psp-stripe-event-failures"
_OBJECT_KEY = re.compile(r"^[-_~.a-zA-Z0-9]{1,256}$")


def object_key(event_id: str) -> str:
    """The inbox key of an event id (hashed when it has characters keys cannot hold)."""
    return event_id if _OBJECT_KEY.match(event_id) else "sha256-" + hashlib.sha256(event_id.encode()).hexdigest()


def _receipt(data: JSON) -> EventReceipt:
    value = data["value"]
    return EventReceipt(
        status=EventStatus(value["status"]),
        payment_id=value.get("paymentId"),
        detail=value.get("detail") or "",
        event_id=value.get("eventId") or data.get("key", ""),
        event_type=value.get("type") or "",
        received_at=timestamp(value.get("receivedAt")),
    )


def _failure(data: JSON) -> EventFailure:
    value = data["value"]
    return EventFailure(
        event_id=value["eventId"], event_type=value.get("type") or "", error=value.get("error") or "",
        attempts=integer(value.get("attempts") or 0), first_seen=timestamp(value.get("firstSeen")),
        last_seen=timestamp(value.get("lastSeen")), payload=value.get("payload") or "",
    )


def _results(answer: JSON) -> list[JSON]:
    results = answer.get("results")
    if not isinstance(results, list):
        raise malformed()
    return results


class EventInbox:
    """Processed and failed Stripe events of one project.

    :param client: the project's HTTP client.
    :param retrying: runs an attempt again after each lost race.
    """

    def __init__(self, client: CommercetoolsClient, retrying: Retrying) -> None:
        self.client = client
        self.retrying = retrying

    def entry(self, event_id: str) -> EventReceipt | None:
        """The receipt recorded for the event, if it was processed."""
        try:
            data = self.client.get(f"/custom-objects/{EVENT_CONTAINER}/{object_key(event_id)}")
        except ResourceNotFound:
            return None
        return parsed(_receipt, data)

    def record(
        self, event_id: str, event_type: str, status: EventStatus, payment_id: str | None, detail: str, *, replay: bool
    ) -> None:
        """Record the event as processed; a replay overwrites an existing entry, a delivery never does."""
        body: JSON = {
            "container": EVENT_CONTAINER,
            "key": object_key(event_id),
            "value": {"eventId": event_id, "type": event_type, "status": status.value, "paymentId": payment_id,
                      "detail": detail, "receivedAt": now()},
        }
        if not replay:
            body["version"] = 0  # create only: a concurrent delivery may have recorded it first
        try:
            self.client.post("/custom-objects", body)
        except ConcurrentModification:
            pass

    def recent(self, limit: int = 50) -> list[EventReceipt]:
        """The newest inbox entries."""
        answer = self.client.get(f"/custom-objects/{EVENT_CONTAINER}", sort="createdAt desc", limit=limit)
        return [parsed(_receipt, item) for item in _results(answer)]

    def record_failure(self, event_id: str, event_type: str, error: str, payload: str) -> None:
        """Keep a failed event, or count another failed attempt of it (a lost race is retried)."""
        key = object_key(event_id)

        def attempt() -> None:
            try:
                existing: JSON | None = self.client.get(f"/custom-objects/{FAILURE_CONTAINER}/{key}")
            except ResourceNotFound:
                existing = None
            stamp = now()
            value: JSON = dict(existing["value"]) if existing else {
                "eventId": event_id, "type": event_type, "attempts": 0, "firstSeen": stamp, "payload": payload}
            value.update(attempts=int(value.get("attempts") or 0) + 1, lastSeen=stamp, error=error[:512])
            self.client.post("/custom-objects", {"container": FAILURE_CONTAINER, "key": key, "value": value,
                                                 "version": existing["version"] if existing else 0})

        self.retrying(attempt)

    def failures(self, limit: int = 50) -> list[EventFailure]:
        """The most recently failed events, newest first; ``resolved`` once in the inbox."""
        answer = self.client.get(f"/custom-objects/{FAILURE_CONTAINER}", sort="lastModifiedAt desc", limit=limit)
        failures = [parsed(_failure, item) for item in _results(answer)]
        keys = ", ".join(quoted(object_key(f.event_id)) for f in failures)
        resolved: set[str] = set()
        if keys:
            inbox = self.client.get(f"/custom-objects/{EVENT_CONTAINER}", where=f"key in ({keys})", limit=limit)
            resolved = {item["key"] for item in inbox.get("results") or []
                        if isinstance(item, dict) and isinstance(item.get("key"), str)}
        return [replace(f, resolved=object_key(f.event_id) in resolved) for f in failures]

    def stored_event(self, event_id: str) -> str | None:
        """The payload kept for a failed event, if any."""
        try:
            data = self.client.get(f"/custom-objects/{FAILURE_CONTAINER}/{object_key(event_id)}")
        except ResourceNotFound:
            return None
        payload = dig(data, "value", "payload")
        return payload if isinstance(payload, str) else None
