"""The inbox of Stripe events as operators read it, and the events whose processing failed."""

from __future__ import annotations

from sqlalchemy import Connection, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from flask_psp_connector.domain.inbox import EventFailure, EventReceipt, EventStatus
from flask_psp_connector.platforms.embedded.database import Database
from flask_psp_connector.platforms.embedded.schema import EventFailureRow, StripeEventRow, table_of, utcnow

_events = table_of(StripeEventRow)
_failures = table_of(EventFailureRow)


class Inbox:
    """What ``flask psp events`` lists and replays."""

    _db: Database

    def recent_events(self, limit: int = 50) -> list[EventReceipt]:
        """The newest inbox entries (for ``flask psp events list``)."""
        query = select(StripeEventRow).order_by(StripeEventRow.received_at.desc()).limit(limit)

        def read(session: Session) -> list[EventReceipt]:
            return [EventReceipt(EventStatus(r.status), r.payment_id, r.detail, r.id, r.type, r.received_at)
                    for r in session.scalars(query)]

        return self._db.run(read)

    def event_receipt(self, event_id: str) -> EventReceipt | None:
        """The inbox entry of the event, if it was processed (or ignored) already."""
        query = select(_events).where(_events.c.id == event_id)

        def read(connection: Connection) -> EventReceipt | None:
            r = connection.execute(query).first()
            return None if r is None else EventReceipt(EventStatus(r.status), r.payment_id, r.detail, r.id, r.type,
                                                       r.received_at)

        return self._db.run(read, core=True)

    def record_event_failure(self, event_id: str, event_type: str, error: str, payload: str) -> None:
        """Keep a failed event, or count another failed attempt of it, in a transaction of its own."""
        now = utcnow()

        def work(connection: Connection) -> None:
            insert_for = postgresql_insert if connection.dialect.name == "postgresql" else sqlite_insert
            statement = insert_for(_failures).values(
                event_id=event_id, type=event_type[:128], error=error[:512], attempts=1, first_seen=now, last_seen=now,
                payload=payload)
            connection.execute(statement.on_conflict_do_update(index_elements=[_failures.c.event_id], set_={
                "attempts": _failures.c.attempts + 1, "last_seen": now, "error": error[:512]}))

        self._db.run(work, write=True, core=True)

    def event_failures(self, limit: int = 50) -> list[EventFailure]:
        """The most recently failed events, newest first; ``resolved`` once in the inbox."""
        query = (select(_failures, _events.c.id.label("inbox_id"))
                 .outerjoin(_events, _events.c.id == _failures.c.event_id)
                 .order_by(_failures.c.last_seen.desc()).limit(limit))

        def read(connection: Connection) -> list[EventFailure]:
            return [EventFailure(r.event_id, r.type, r.error, r.attempts, r.first_seen, r.last_seen, r.payload,
                                 resolved=r.inbox_id is not None)
                    for r in connection.execute(query)]

        return self._db.run(read, core=True)

    def stored_event(self, event_id: str) -> str | None:
        """The payload kept for a failed event, if any."""
        query = select(_failures.c.payload).where(_failures.c.event_id == event_id)
        payload = self._db.run(lambda connection: connection.scalar(query), core=True)
        return None if payload is None else str(payload)
