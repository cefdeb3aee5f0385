"""The database the embedded store, the gateways' store, the token server and host apps share.

:class:`Database` owns the engine (SQLite tuned for concurrent writers, or PostgreSQL),
the SQLite writers' queue (see ``sqlite_writers``) and the transactions: ORM or bare
connection, committed on success and rolled back on error. :meth:`Database.run` runs a
unit of work again when it lost a serialization race, and only then: a constraint that
a write violates is a fault of that write, not a race, and is raised as it is.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from flask_psp_connector.errors import ConcurrentModification, PlatformUnavailable
from flask_psp_connector.observability import telemetry
from flask_psp_connector.platforms.embedded.sqlite_writers import WriterQueue
from flask_psp_connector.retry import retrying

T = TypeVar("T")
_WRITE_OPTION = "psp_write"
_ATTEMPTS = 5
_BACKOFF = 0.01
_POOL_OVERFLOW = 10
#: PostgreSQL's serialization_failure and deadlock_detected: the transaction lost a race.
_LOST_RACE_SQLSTATES = frozenset({"40001", "40P01"})
#: SQLITE_BUSY_SNAPSHOT: a WAL reader's snapshot went stale before it could write. A plain
#: SQLITE_BUSY is not a race but the busy timeout running out, like a lock timeout.
_SQLITE_BUSY_SNAPSHOT = 517


class SerializationConflict(ConcurrentModification):
    """The transaction lost a race with another one; running it again may succeed."""


def normalize_database_url(url: str) -> str:
    """Accept Heroku's ``postgres://`` and route PostgreSQL through psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    """Create an engine tuned for concurrent writers on SQLite or PostgreSQL.

    A failed statement's error never shows its parameters (``hide_parameters``): they
    hold client secrets, and errors reach the logs.

    :param pool_size: connections kept open for reuse; give it the threads of the process,
        so that no thread waits for a connection, nor opens one for a single transaction.
        Up to ``_POOL_OVERFLOW`` more are opened while that many are in use at once.
    """
    url = normalize_database_url(url)
    if not url.startswith("sqlite"):
        return create_engine(url, pool_size=pool_size, max_overflow=_POOL_OVERFLOW, pool_recycle=1800,
                             hide_parameters=True)
    in_memory = make_url(url).database in (None, "", ":memory:")
    pool = {} if in_memory else {"pool_size": pool_size, "max_overflow": _POOL_OVERFLOW}
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, hide_parameters=True,
                           **pool)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Writers take the write lock up front so two of them serialize instead of
        # deadlocking on a lock upgrade; readers never block anyone in WAL mode.
        write = connection.get_execution_options().get(_WRITE_OPTION)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def lost_race(exc: BaseException) -> bool:
    """Whether ``exc`` says the transaction lost a serialization race (and nothing else)."""
    if isinstance(exc, StaleDataError):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    original = exc.orig
    if getattr(original, "sqlstate", None) in _LOST_RACE_SQLSTATES:
        return True
    return isinstance(original, sqlite3.Error) and original.sqlite_errorcode == _SQLITE_BUSY_SNAPSHOT


class Database:
    """One database: its engine, its transactions and the SQLite writers' queue.

    :param engine: from :func:`make_engine` (or :meth:`from_url`).
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        database = engine.url.database
        on_file = engine.dialect.name == "sqlite" and database not in (None, "", ":memory:")
        self._writers = WriterQueue(database) if on_file and database else None

    @classmethod
    def from_url(cls, url: str, *, pool_size: int = 10) -> Database:
        """The database at ``url`` (``postgres://`` URLs accepted); ``pool_size`` as :func:`make_engine`."""
        return cls(make_engine(url, pool_size=pool_size))

    @staticmethod
    def default_url(instance_path: str) -> str:
        """The SQLite file in the app's instance folder."""
        Path(instance_path).mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{Path(instance_path) / 'psp.sqlite3'}"

    @property
    def queues_writers(self) -> bool:
        """Whether writers queue for their turn (a SQLite file) before they begin."""
        return self._writers is not None

    @contextmanager
    def transaction(self, *, write: bool = False) -> Iterator[Session]:
        """One transaction on an ORM session: committed on success, rolled back on error.

        :param write: the transaction writes (on SQLite it queues and takes the write lock first).
        :raises SerializationConflict: when it lost a race with another transaction.
        :raises PlatformUnavailable: when the database does not answer.
        """
        with self._errors(), self._turn(write), self._sessions() as session, session.begin():
            if write:
                session.connection(execution_options={_WRITE_OPTION: True})
            yield session

    @contextmanager
    def connection(self, *, write: bool = False) -> Iterator[Connection]:
        """One transaction on a bare connection (hot paths skip the ORM); as :meth:`transaction`."""
        # The pool's checkout and checkin happen outside the writers' turn: only the
        # transaction holds up the next writer.
        with self._errors(), self.engine.connect() as connection, self._turn(write):
            if write:
                connection.execution_options(**{_WRITE_OPTION: True})
            with connection.begin():
                yield connection

    def run(self, work: Callable[[Any], T], *, write: bool = False, core: bool = False, name: str = "") -> T:
        """Run ``work`` in one transaction, given a session (or a bare connection if ``core``).

        A lost serialization race is run again, with backoff, and so is a pooled connection
        the server had closed (instead of pinging the server before every transaction).
        ``name`` labels the call's metric and span (default: the method ``work`` is defined in).

        :raises ConcurrentModification: when every attempt lost its race.
        """
        transaction = self.connection if core else self.transaction
        reconnected = False

        def attempt() -> T:
            nonlocal reconnected
            try:
                with transaction(write=write) as handle:
                    return work(handle)
            except PlatformUnavailable as exc:
                if reconnected or not getattr(exc.__cause__, "connection_invalidated", False):
                    raise
                reconnected = True
            with transaction(write=write) as handle:
                return work(handle)

        with telemetry.external_call("store", name or _operation(work)):
            return retrying(attempt, retry_on=(SerializationConflict,), attempts=_ATTEMPTS, backoff=_BACKOFF)

    def check_health(self) -> None:
        """Raise :class:`PlatformUnavailable` if the database does not answer."""
        self.run(lambda connection: connection.execute(text("SELECT 1")), core=True, name="check_health")

    def dispose(self) -> None:
        """Close the pooled connections (before a fork, or when done)."""
        self.engine.dispose()

    def _turn(self, write: bool) -> AbstractContextManager[None]:
        """A write's place in the SQLite writers' queue (nothing to wait for otherwise)."""
        return self._writers.turn() if write and self._writers is not None else nullcontext()

    @staticmethod
    @contextmanager
    def _errors() -> Iterator[None]:
        try:
            yield
        except (StaleDataError, DBAPIError) as exc:
            if lost_race(exc):
                raise SerializationConflict("The resource was modified concurrently; try again.") from exc
            if isinstance(exc, OperationalError):
                raise PlatformUnavailable("The payment store is unavailable.") from exc
            raise


def _operation(work: Callable[..., Any]) -> str:
    """The method a unit of work is defined in (``get_cart``): a metric label and span name."""
    parts = work.__qualname__.split(".")
    return parts[1] if len(parts) > 2 and parts[2] == "<locals>" else parts[0]
