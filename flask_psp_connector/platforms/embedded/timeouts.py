"""Bounded waits on the embedded store's database.

Without them one stuck row lock (a frozen worker, a half-open connection) holds every
thread that needs the row, and then every thread of the server. With them, a request
waiting on a lock fails after ``lock_timeout`` with :class:`~..errors.PlatformUnavailable`
(503: Stripe delivers a webhook again later) while the other requests are served.

PostgreSQL gets ``lock_timeout``, ``statement_timeout`` and
``idle_in_transaction_session_timeout`` on every new connection; SQLite gets its busy
timeout (how long a writer waits for the database lock).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, event


def apply_database_timeouts(engine: Engine, *, lock_ms: int, statement_ms: int, idle_in_transaction_ms: int) -> None:
    """Set the timeouts (milliseconds; 0 disables one on PostgreSQL) on each new connection of ``engine``."""
    if engine.dialect.name == "postgresql":
        settings = {
            "lock_timeout": int(lock_ms),
            "statement_timeout": int(statement_ms),
            "idle_in_transaction_session_timeout": int(idle_in_transaction_ms),
        }

        @event.listens_for(engine, "connect")
        def _set_timeouts(dbapi_connection: Any, _record: Any) -> None:
            with dbapi_connection.cursor() as cursor:
                for name, value in settings.items():
                    cursor.execute(f"SET {name} = {value}")  # ints from the settings, never user input
            dbapi_connection.commit()

    elif engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _set_busy_timeout(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute(f"PRAGMA busy_timeout = {int(lock_ms)}")
