"""What the event inbox records: each Stripe event's outcome, and the failures kept for replay."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


class EventStatus(enum.StrEnum):
    """What became of a Stripe event."""

    PROCESSED = "processed"
    IGNORED = "ignored"
    DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True)
class EventReceipt:
    """The inbox's answer for one Stripe event."""

    status: EventStatus
    payment_id: str | None
    detail: str = ""
    event_id: str = ""
    event_type: str = ""
    received_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class EventFailure:
    """A Stripe event whose processing failed, as stored for operators and replays.

    ``resolved`` once the event made it into the inbox (Stripe's retry or a replay).
    """

    event_id: str
    event_type: str
    error: str
    attempts: int
    first_seen: datetime | None
    last_seen: datetime | None
    payload: str
    resolved: bool = False
