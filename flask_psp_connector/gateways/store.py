"""What the external gateways keep: the answer given to each request, and the outbox of
callbacks to the platform.

Both live in the embedded store's database (tables ``psp_gateway_requests`` and
``psp_gateway_callbacks``), so several workers share them and a restart loses nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from flask_psp_connector.platforms.embedded.database import Database
from flask_psp_connector.platforms.embedded.schema import GatewayCallbackRow, GatewayRequestRow, table_of, utcnow
from flask_psp_connector.ports import Answer, CallbackSettlement

_requests = table_of(GatewayRequestRow)
_callbacks = table_of(GatewayCallbackRow)
# Prebuilt statements with bound parameters: compiled once, not for every request.
_ANSWERS = select(_requests.c.key, _requests.c.status_code, _requests.c.body, _requests.c.action_id).where(
    _requests.c.key.in_(bindparam("keys", expanding=True)))
_RECORD_ANSWER = {
    "sqlite": sqlite_insert(_requests).on_conflict_do_nothing().returning(_requests.c.key),
    "postgresql": postgresql_insert(_requests).on_conflict_do_nothing().returning(_requests.c.key),
}
_ENQUEUE = {
    "sqlite": sqlite_insert(_callbacks).on_conflict_do_nothing(),
    "postgresql": postgresql_insert(_callbacks).on_conflict_do_nothing(),
}


@dataclass(frozen=True, slots=True)
class Callback:
    """One signed POST still owed to the platform."""

    action_id: str
    url: str
    payload: str
    attempts: int
    next_attempt_at: datetime
    last_error: str


class GatewayStore:
    """Answers and callbacks in the embedded store's database.

    :param database: the database (and SQLite writers' queue) the embedded store uses.
    """

    def __init__(self, database: Database) -> None:
        self._db = database

    def answer(self, key: str) -> Answer | None:
        """The answer already given to the request ``key``, if any."""
        return self.answers(key).get(key)

    def answers(self, *keys: str) -> dict[str, Answer]:
        """The answers already given to any of ``keys``, in one read."""
        with self._db.connection() as connection:
            rows = connection.execute(_ANSWERS, {"keys": list(keys)}).all()
        return {row.key: Answer(row.status_code, row.body, row.action_id) for row in rows}

    def answers_starting_with(self, prefix: str) -> dict[str, Answer]:
        """The answers kept for every key that starts with ``prefix``."""
        pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = select(_requests.c.key, _requests.c.status_code, _requests.c.body, _requests.c.action_id).where(
            _requests.c.key.like(pattern, escape="\\"))
        with self._db.connection() as connection:
            rows = connection.execute(query).all()
        return {row.key: Answer(row.status_code, row.body, row.action_id) for row in rows}

    def record_answer(self, key: str, answer: Answer) -> Answer:
        """Keep ``answer`` for ``key`` unless one is already kept; return the one kept (first wins)."""
        with self._db.connection(write=True) as connection:
            inserted = connection.execute(_RECORD_ANSWER[connection.dialect.name], {
                "key": key, "status_code": answer.status, "body": answer.body, "action_id": answer.action_id,
                "created_at": utcnow()}).first()
            if inserted is not None:
                return answer
            row = connection.execute(_ANSWERS, {"keys": [key]}).one()
        return Answer(row.status_code, row.body, row.action_id)

    def replace_answer(self, key: str, answer: Answer) -> None:
        """Keep ``answer`` for ``key`` in place of the one kept (for answers that follow a
        changing resource, such as a cart's PaymentIntent)."""
        with self._db.connection(write=True) as connection:
            connection.execute(update(_requests).where(_requests.c.key == key).values(
                status_code=answer.status, body=answer.body, action_id=answer.action_id))

    def settle(self, key: str, url: str, payload: str) -> str:
        """Mark the asynchronous answer of ``key`` settled and enqueue its callback, in one
        transaction; a second settlement changes nothing.

        :returns: one of the :class:`~flask_psp_connector.ports.CallbackSettlement` values.
        """
        now = utcnow()
        with self._db.connection(write=True) as connection:
            row = connection.execute(
                select(_requests.c.status_code, _requests.c.action_id, _requests.c.settled_at)
                .where(_requests.c.key == key).with_for_update()
            ).first()
            if row is None:
                return CallbackSettlement.UNKNOWN
            if row.action_id is None:
                return CallbackSettlement.NOT_PENDING
            if row.settled_at is not None:
                return CallbackSettlement.ALREADY_SETTLED
            connection.execute(update(_requests).where(_requests.c.key == key).values(settled_at=now))
            connection.execute(_ENQUEUE[connection.dialect.name], {
                "action_id": row.action_id, "url": url, "payload": payload, "attempts": 0, "next_attempt_at": now,
                "last_error": "", "created_at": now})
        return CallbackSettlement.ENQUEUED

    def due_callbacks(self, now: datetime, limit: int = 100) -> list[Callback]:
        """Undelivered callbacks whose next attempt is due, oldest first."""
        query = (select(_callbacks).where(_callbacks.c.delivered_at.is_(None), _callbacks.c.next_attempt_at <= now)
                 .order_by(_callbacks.c.next_attempt_at).limit(limit))
        return self._callbacks(query)

    def pending_callbacks(self, limit: int = 100) -> list[Callback]:
        """Every undelivered callback, due or not, oldest first."""
        query = (select(_callbacks).where(_callbacks.c.delivered_at.is_(None))
                 .order_by(_callbacks.c.created_at).limit(limit))
        return self._callbacks(query)

    def backlog(self) -> tuple[int, datetime | None]:
        """How many callbacks wait for delivery, and when the oldest of them was settled."""
        query = select(func.count(), func.min(_callbacks.c.created_at)).where(_callbacks.c.delivered_at.is_(None))
        with self._db.connection() as connection:
            depth, oldest = connection.execute(query).one()
        if oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=UTC)
        return depth, oldest

    def callback(self, action_id: str) -> Callback | None:
        """The undelivered callback of ``action_id``, if any."""
        query = select(_callbacks).where(_callbacks.c.action_id == action_id, _callbacks.c.delivered_at.is_(None))
        return next(iter(self._callbacks(query)), None)

    def claim(self, callback: Callback, retry_at: datetime) -> bool:
        """Take ``callback`` for one attempt; its next attempt moves to ``retry_at`` now, so
        a worker that dies mid-delivery leaves it to be retried. False if another took it."""
        with self._db.connection(write=True) as connection:
            claimed = connection.execute(
                update(_callbacks)
                .where(_callbacks.c.action_id == callback.action_id, _callbacks.c.attempts == callback.attempts,
                       _callbacks.c.delivered_at.is_(None))
                .values(attempts=callback.attempts + 1, next_attempt_at=retry_at)
            )
        return bool(claimed.rowcount == 1)

    def mark_delivered(self, action_id: str) -> None:
        """The platform accepted the callback."""
        with self._db.connection(write=True) as connection:
            connection.execute(update(_callbacks).where(_callbacks.c.action_id == action_id)
                            .values(delivered_at=utcnow(), last_error=""))

    def mark_failed(self, action_id: str, error: str) -> None:
        """Note why the last attempt failed (its retry is already scheduled by :meth:`claim`)."""
        with self._db.connection(write=True) as connection:
            connection.execute(update(_callbacks).where(_callbacks.c.action_id == action_id)
                            .values(last_error=error[:512]))

    def _callbacks(self, query: Select[Any]) -> list[Callback]:
        with self._db.connection() as connection:
            return [
                Callback(r.action_id, r.url, r.payload, r.attempts, r.next_attempt_at, r.last_error)
                for r in connection.execute(query)
            ]

