"""The Database runs a unit of work again only when it lost a serialization race."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import QueuePool, insert
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm.exc import StaleDataError

from flask_psp_connector.errors import ConcurrentModification, PlatformUnavailable
from flask_psp_connector.platforms.embedded.database import Database, lost_race, make_engine
from flask_psp_connector.platforms.embedded.schema import PaymentRow, utcnow
from tests.conftest import AppFactory


@pytest.fixture
def database(platform: Any) -> Iterator[Database]:
    yield platform.database


class _PostgresError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def _sqlite_error(code: int) -> sqlite3.OperationalError:
    error = sqlite3.OperationalError("database is locked")
    error.sqlite_errorcode = code
    return error


@pytest.mark.parametrize(("error", "race"), [
    (StaleDataError("version moved"), True),
    (OperationalError("UPDATE", {}, _PostgresError("40001")), True),  # serialization_failure
    (OperationalError("UPDATE", {}, _PostgresError("40P01")), True),  # deadlock_detected
    (OperationalError("UPDATE", {}, _PostgresError("55P03")), False),  # lock_timeout: a 503, not a race
    (OperationalError("BEGIN", {}, _sqlite_error(517)), True),  # SQLITE_BUSY_SNAPSHOT
    (OperationalError("BEGIN", {}, _sqlite_error(5)), False),  # SQLITE_BUSY: the busy timeout ran out
    (IntegrityError("INSERT", {}, _PostgresError("23503")), False),  # foreign_key_violation
    (ValueError("not a database error"), False),
])
def test_only_serialization_failures_are_lost_races(error: BaseException, race: bool) -> None:
    assert lost_race(error) is race


def test_a_lost_race_is_run_again_until_it_succeeds(database: Database) -> None:
    calls = []

    def work(_session: Any) -> str:
        calls.append(1)
        if len(calls) < 3:
            raise StaleDataError("another writer won")
        return "done"

    assert database.run(work, write=True) == "done"
    assert len(calls) == 3


def test_a_race_lost_every_time_is_a_concurrent_modification(database: Database) -> None:
    calls = []

    def work(_session: Any) -> None:
        calls.append(1)
        raise StaleDataError("another writer won")

    with pytest.raises(ConcurrentModification):
        database.run(work, write=True)
    assert len(calls) == 5


def test_a_violated_constraint_is_raised_at_once_and_not_as_a_conflict(database: Database) -> None:
    calls = []
    orphan = {"id": "pay-orphan", "version": 1, "cart_id": "no-such-cart", "amount": 1, "currency_code": "EUR",
              "fraction_digits": 2, "payment_interface": "checkout-stripe", "created_at": utcnow(),
              "updated_at": utcnow()}

    def work(connection: Any) -> None:
        calls.append(1)
        connection.execute(insert(PaymentRow), [orphan])

    with pytest.raises(IntegrityError):
        database.run(work, write=True, core=True)
    assert len(calls) == 1


def test_an_unreachable_database_is_unavailable_not_a_conflict() -> None:
    database = Database.from_url("postgresql+psycopg://nobody@127.0.0.1:1/none")
    with pytest.raises(PlatformUnavailable):
        database.check_health()
    database.dispose()


@pytest.mark.parametrize("url", ["sqlite:///{tmp}/pool.sqlite3", "postgresql+psycopg://user@127.0.0.1:9/none"])
def test_the_pool_keeps_as_many_connections_as_it_is_told(url: str, tmp_path: Any) -> None:
    """A worker's threads each find a kept connection (no engine connects when it is made)."""
    engine = make_engine(url.format(tmp=tmp_path), pool_size=16)
    assert isinstance(engine.pool, QueuePool)
    assert engine.pool.size() == 16
    assert engine.pool._max_overflow == 10
    engine.dispose()


def test_the_extension_sizes_the_pool_from_its_setting(make_app: AppFactory, tmp_path: Any) -> None:
    app = make_app(PSP_DATABASE_URL=f"sqlite:///{tmp_path}/psp.sqlite3", PSP_DATABASE_POOL_SIZE=24)
    assert app.extensions["psp_connector"].database.engine.pool.size() == 24


def test_a_failed_statement_never_shows_its_parameters(database: Database) -> None:
    secret = "pi_hidden_secret_0123456789"
    values = {"id": "p-1", "version": 1, "cart_id": "no-such-cart", "amount": 100, "currency_code": "EUR",
              "fraction_digits": 2, "payment_interface": "checkout-stripe", "client_secret": secret,
              "created_at": utcnow(), "updated_at": utcnow()}

    with pytest.raises(IntegrityError) as refused:  # the cart's foreign key
        database.run(lambda connection: connection.execute(insert(PaymentRow), values), write=True, core=True)

    assert secret not in str(refused.value)
