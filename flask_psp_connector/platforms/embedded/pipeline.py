"""Prebuilt statements of a hot path sent to the driver directly, together where it can.

Each round trip to PostgreSQL costs a wake-up of the worker and of the server's backend,
and on a busy machine that wait, not the statements, sets the webhook's pace. Statements
whose parameters do not depend on each other's results are therefore sent together in
psycopg's pipeline mode: the server still runs them one after the other, each with its
own snapshot (so a read sent after a ``FOR UPDATE`` sees what the lock's previous holder
committed), and answers them all at once. SQLite runs them in turn; there what counts is
the time a write transaction holds the database, and SQLAlchemy's own work per statement
is several times the driver's.

So the statements go to the driver directly (psycopg 3's or Python's ``sqlite3``; another
driver gets them through SQLAlchemy, in turn), compiled once: their parameters are
converted by their types as SQLAlchemy would (JSON), their rows too (SQLite's timestamps
and JSON; psycopg needs none for the embedded store's types), the engine's cursor events
(before and after) are still sent for each one, and the driver's errors are raised as
SQLAlchemy's, as from :meth:`Connection.execute`.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Executable
from sqlalchemy.engine import Compiled, Dialect
from sqlalchemy.exc import DBAPIError

Work = tuple[Executable, Mapping[str, Any]]


def fetch_together(connection: Connection, work: Sequence[Work]) -> list[Sequence[Any]]:
    """The rows of each statement of ``work``, run in order (in one round trip on PostgreSQL).

    Rows read by attribute, like SQLAlchemy's. A statement that fails fails the ones after it.
    """
    driver = (connection.dialect.name, connection.dialect.driver)
    if driver == ("sqlite", "pysqlite"):
        return [_run(connection, statement, params) for statement, params in work]
    if driver != ("postgresql", "psycopg"):  # another driver: through SQLAlchemy, in turn
        results = [connection.execute(statement, dict(params)) for statement, params in work]
        return [result.all() if result.returns_rows else [] for result in results]
    from psycopg.rows import namedtuple_row  # the PostgreSQL driver, installed with the postgres extra

    raw = connection.connection.driver_connection
    assert raw is not None
    sent = [_sql(statement, connection.dialect, params) for statement, params in work]
    events = _events(connection)
    cursors = []
    try:
        with raw.pipeline():
            for sql, params in sent:
                cursor = raw.cursor(row_factory=namedtuple_row)
                if events:
                    connection.dispatch.before_cursor_execute(connection, cursor, sql, params, None, False)
                cursor.execute(sql, params)
                cursors.append(cursor)
        if events:
            for cursor, (sql, params) in zip(cursors, sent, strict=True):
                connection.dispatch.after_cursor_execute(connection, cursor, sql, params, None, False)
        return [cursor.fetchall() if cursor.description is not None else [] for cursor in cursors]
    except connection.dialect.loaded_dbapi.Error as exc:
        gone = connection.dialect.is_disconnect(exc, raw, None)
        if gone:
            connection.invalidate(exc)
        raise DBAPIError.instance("; ".join(sql for sql, _ in sent), [params for _, params in sent], exc,
                                  connection.dialect.loaded_dbapi.Error, connection_invalidated=gone,
                                  dialect=connection.dialect,
                                  hide_parameters=connection.engine.hide_parameters) from exc
    finally:
        for cursor in cursors:
            cursor.close()


def execute_many(connection: Connection, statement: Executable, rows: Sequence[Mapping[str, Any]]) -> None:
    """Run a statement that returns nothing once for each of ``rows`` (straight to SQLite's driver)."""
    if (connection.dialect.name, connection.dialect.driver) != ("sqlite", "pysqlite"):
        connection.execute(statement, [dict(row) for row in rows])
        return
    raw = connection.connection.driver_connection
    assert raw is not None
    compiled: Any = _compiled(statement, connection.dialect)
    sent = [_sql(statement, connection.dialect, row) for row in rows]
    positional = [tuple(values[name] for name in compiled.positiontup or ()) for _, values in sent]
    cursor = raw.cursor()
    try:
        events = _events(connection)
        if events:
            connection.dispatch.before_cursor_execute(connection, cursor, compiled.string, positional, None, True)
        cursor.executemany(compiled.string, positional)
        if events:
            connection.dispatch.after_cursor_execute(connection, cursor, compiled.string, positional, None, True)
    except connection.dialect.loaded_dbapi.Error as exc:
        raise DBAPIError.instance(compiled.string, positional, exc, connection.dialect.loaded_dbapi.Error,
                                  dialect=connection.dialect,
                                  hide_parameters=connection.engine.hide_parameters) from exc
    finally:
        cursor.close()


def _run(connection: Connection, statement: Executable, params: Mapping[str, Any]) -> list[Any]:
    """One statement on a driver with positional parameters (SQLite's), its rows converted."""
    raw = connection.connection.driver_connection
    assert raw is not None
    compiled: Any = _compiled(statement, connection.dialect)
    sql, values = _sql(statement, connection.dialect, params)
    positional = tuple(values[name] for name in compiled.positiontup or ())
    cursor = raw.cursor()
    try:
        events = _events(connection)
        if events:
            connection.dispatch.before_cursor_execute(connection, cursor, sql, positional, None, False)
        cursor.execute(sql, positional)
        if events:
            connection.dispatch.after_cursor_execute(connection, cursor, sql, positional, None, False)
        if cursor.description is None:
            return []
        make = _row_maker(statement, connection.dialect)
        return [make(row) for row in cursor.fetchall()]
    except connection.dialect.loaded_dbapi.Error as exc:
        raise DBAPIError.instance(sql, positional, exc, connection.dialect.loaded_dbapi.Error,
                                  dialect=connection.dialect,
                                  hide_parameters=connection.engine.hide_parameters) from exc
    finally:
        cursor.close()


@lru_cache(maxsize=64)
def _row_maker(statement: Executable, dialect: Dialect) -> Callable[[Sequence[Any]], Any]:
    """Named rows of the statement's result columns, each converted by its type."""
    compiled: Any = _compiled(statement, dialect)
    columns: list[Any] = compiled._result_columns
    row = namedtuple("Row", [column.keyname for column in columns])  # type: ignore[misc]
    processors = [column.type._cached_result_processor(dialect, None) for column in columns]
    if not any(processors):
        return row._make
    pairs = list(enumerate(processors))
    return lambda values: row._make([values[n] if convert is None or values[n] is None else convert(values[n])
                                     for n, convert in pairs])


def _sql(statement: Executable, dialect: Dialect, params: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The statement's SQL and its parameters, as SQLAlchemy's execution would send them."""
    sql, defaults, processors = _binds(statement, dialect)
    values = {name: params.get(name, default) for name, default in defaults.items()}
    for name, process in processors:
        values[name] = process(values[name])
    return sql, values


@lru_cache(maxsize=64)
def _binds(statement: Executable, dialect: Dialect) -> tuple[str, dict[str, Any], list[tuple[str, Any]]]:
    """The statement's SQL, its parameters with their own values (a literal's), and the
    conversions its types make (JSON's), once."""
    compiled: Any = _compiled(statement, dialect)
    processors = compiled._bind_processors
    defaults = dict(compiled.construct_params(_check=False))
    return compiled.string, defaults, [(name, processors[name]) for name in defaults if name in processors]


def _events(connection: Connection) -> bool:
    """Whether anyone listens to the engine's cursor events."""
    return bool(connection.dispatch.before_cursor_execute or connection.dispatch.after_cursor_execute)


@lru_cache(maxsize=64)
def _compiled(statement: Executable, dialect: Dialect) -> Compiled:
    """The statement compiled once for the dialect (the statements here are prebuilt)."""
    return statement.compile(dialect=dialect)  # type: ignore[attr-defined, no-any-return]
