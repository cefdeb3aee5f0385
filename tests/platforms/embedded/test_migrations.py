"""Schema migrations: from an empty database and from one made before migrations, on SQLite
and PostgreSQL; the migrated schema is the models' schema; several starters at once are safe."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask
from sqlalchemy import MetaData, create_engine, insert, inspect, select, text

from demo_shop.tables import SHOP_MIGRATIONS, SHOP_VERSION_TABLE, accounts_table, create_tables, shop_metadata
from flask_psp_connector import LineItemDraft, PSPConnector
from flask_psp_connector.platforms.embedded import migrate
from flask_psp_connector.platforms.embedded.database import Database, normalize_database_url
from flask_psp_connector.platforms.embedded.migrate import STORE_MIGRATIONS, STORE_VERSION_TABLE, current_revision, upgrade_store
from flask_psp_connector.platforms.embedded.schema import Base
from flask_psp_connector.platforms.embedded.store import LocalPlatform
from tests.conftest import POSTGRES_URL


def _empty_postgres() -> str:
    engine = create_engine(normalize_database_url(POSTGRES_URL))
    with engine.begin() as connection:
        connection.execute(text("SET client_min_messages = warning"))
        everything = MetaData()
        everything.reflect(connection)
        everything.drop_all(connection)
    engine.dispose()
    return POSTGRES_URL


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database with no table at all."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite3'}"
    return _empty_postgres()


@pytest.fixture
def database(empty_url: str) -> Iterator[Database]:
    db = Database.from_url(empty_url)
    yield db
    db.dispose()


def _head(location: str) -> str:
    config = Config()
    config.set_main_option("script_location", location)
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def _revision(database: Database, version_table: str) -> str | None:
    with database.connection() as connection:
        return current_revision(connection, version_table)


def _differences(database: Database, metadata: MetaData, version_table: str) -> list[Any]:
    """What autogenerate would still change to make the database match ``metadata``."""

    def ours(name: str | None, kind: str, _parent: Any) -> bool:
        return kind != "table" or name in metadata.tables

    with database.connection() as connection:
        context = MigrationContext.configure(connection, opts={
            "version_table": version_table, "include_name": ours, "compare_type": True})
        return list(compare_metadata(context, metadata))


def test_an_empty_database_is_brought_to_head_and_matches_the_models(database: Database) -> None:
    upgrade_store(database)
    assert _revision(database, STORE_VERSION_TABLE) == _head(STORE_MIGRATIONS)
    assert _differences(database, Base.metadata, STORE_VERSION_TABLE) == []
    tables = set(inspect(database.engine).get_table_names())
    assert STORE_VERSION_TABLE in tables and "alembic_version" not in tables


def test_upgrading_again_changes_nothing(database: Database) -> None:
    store = LocalPlatform(database)
    store.create_schema()
    cart = store.create_cart("EUR", line_items=[LineItemDraft("tee", "T-shirt", 1, 1500)])
    store.create_schema()
    assert store.get_cart(cart.id) == cart
    assert _revision(database, STORE_VERSION_TABLE) == _head(STORE_MIGRATIONS)


def test_a_store_made_before_migrations_is_adopted_with_its_data(database: Database) -> None:
    Base.metadata.create_all(database.engine)  # how earlier releases made the tables
    store = LocalPlatform(database)
    cart = store.create_cart("EUR", line_items=[LineItemDraft("tee", "T-shirt", 2, 1500)])
    assert _revision(database, STORE_VERSION_TABLE) is None

    store.create_schema()

    assert _revision(database, STORE_VERSION_TABLE) == _head(STORE_MIGRATIONS)
    assert _differences(database, Base.metadata, STORE_VERSION_TABLE) == []
    assert store.get_cart(cart.id) == cart


def test_a_store_missing_later_nullable_columns_gets_them(database: Database) -> None:
    Base.metadata.create_all(database.engine)
    with database.engine.begin() as connection:
        connection.execute(text("ALTER TABLE psp_payments DROP COLUMN stale_reason"))
    store = LocalPlatform(database)
    store.create_schema()
    assert "stale_reason" in {c["name"] for c in inspect(database.engine).get_columns("psp_payments")}
    assert _differences(database, Base.metadata, STORE_VERSION_TABLE) == []


def test_several_processes_starting_on_one_new_store_all_succeed(empty_url: str) -> None:
    starters = [Database.from_url(empty_url) for _ in range(4)]
    barrier = threading.Barrier(len(starters))
    errors: list[BaseException] = []

    def start(database: Database) -> None:
        barrier.wait()
        try:
            upgrade_store(database)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(database,)) for database in starters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        assert _revision(starters[0], STORE_VERSION_TABLE) == _head(STORE_MIGRATIONS)
        with starters[0].connection() as connection:
            rows = connection.execute(text(f"SELECT count(*) FROM {STORE_VERSION_TABLE}")).scalar_one()
        assert rows == 1
    finally:
        for database in starters:
            database.dispose()


def test_the_shop_tables_have_their_own_migrations_and_version_table(database: Database) -> None:
    upgrade_store(database)
    create_tables(database)
    create_tables(database)
    assert _revision(database, SHOP_VERSION_TABLE) == _head(SHOP_MIGRATIONS)
    assert _differences(database, shop_metadata, SHOP_VERSION_TABLE) == []
    assert _differences(database, Base.metadata, STORE_VERSION_TABLE) == []
    assert not set(shop_metadata.tables) & set(Base.metadata.tables)


def test_shop_tables_made_with_the_store_before_migrations_are_adopted(database: Database) -> None:
    Base.metadata.create_all(database.engine)
    shop_metadata.create_all(database.engine)
    with database.transaction(write=True) as session:
        session.execute(insert(accounts_table).values(
            id="a1", email="jane@example.test", password_hash="x", customer_id="c1", created_at=text("CURRENT_TIMESTAMP")))
    create_tables(database)
    assert _revision(database, SHOP_VERSION_TABLE) == _head(SHOP_MIGRATIONS)
    with database.transaction() as session:
        assert session.scalar(select(accounts_table.c.email)) == "jane@example.test"


def _app(url: str, instance: Path) -> Flask:
    app = Flask("migrations_test", instance_path=str(instance))
    app.config.update(TESTING=True, PSP_DATABASE_URL=url, STRIPE_SECRET_KEY="sk_test_x",
                      STRIPE_PUBLISHABLE_KEY="pk_test_x", CTP_JWKS_URL="https://auth.example.test/.well-known/jwks.json",
                      CTP_JWT_ISSUER="https://auth.example.test", CTP_PROJECT_KEY="shop")
    PSPConnector(app)
    return app


@pytest.mark.parametrize("before", ["empty", "created by create_all"])
def test_init_db_upgrades_to_head_and_is_idempotent(empty_url: str, tmp_path: Path, before: str) -> None:
    if before != "empty":
        engine = create_engine(normalize_database_url(empty_url))
        Base.metadata.create_all(engine)
        engine.dispose()
    app = _app(empty_url, tmp_path)
    database = app.extensions["psp_connector"].database
    try:
        for _ in range(2):
            result = app.test_cli_runner().invoke(args=["psp", "init-db"])
            assert result.exit_code == 0, result.output
            assert "Schema ready on" in result.output
        assert _revision(database, STORE_VERSION_TABLE) == _head(STORE_MIGRATIONS)
        assert _differences(database, Base.metadata, STORE_VERSION_TABLE) == []
    finally:
        database.dispose()


@pytest.mark.parametrize("location", [STORE_MIGRATIONS, SHOP_MIGRATIONS])
def test_the_head_read_from_the_revision_files_is_alembics(location: str) -> None:
    assert migrate._head(location) == _head(location)


def _revisions(where: Path, *chain: tuple[str, str | None]) -> str:
    (where / "versions").mkdir(parents=True)
    for number, (revision, down) in enumerate(chain):
        (where / "versions" / f"r{number}.py").write_text(f"revision = {revision!r}\ndown_revision = {down!r}\n")
    return str(where)


def test_the_head_of_a_chain_of_revisions_is_its_last(tmp_path: Path) -> None:
    chain = _revisions(tmp_path / "chain", ("a1", None), ("b2", "a1"), ("c3", "b2"))
    assert migrate._head(chain) == _head(chain) == "c3"
    forked = _revisions(tmp_path / "forked", ("a1", None), ("b2", "a1"), ("d4", "a1"))
    with pytest.raises(RuntimeError, match="2 heads"):
        migrate._head(forked)


def test_the_recorded_revision_is_the_one_alembic_reads(database: Database) -> None:
    def alembic_reads() -> str | None:
        with database.connection() as connection:
            return MigrationContext.configure(connection, opts={"version_table": STORE_VERSION_TABLE}).get_current_revision()

    assert _revision(database, STORE_VERSION_TABLE) is None is alembic_reads()
    upgrade_store(database)
    assert _revision(database, STORE_VERSION_TABLE) == alembic_reads() == _head(STORE_MIGRATIONS)


def test_a_process_starting_on_an_up_to_date_store_does_not_import_alembic(tmp_path: Path) -> None:
    """Alembic costs every process some megabytes: only a store that needs upgrading loads it."""
    url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    upgrade_store(Database.from_url(url))
    started = subprocess.run(
        [sys.executable, "-c", "import sys\nfrom flask import Flask\nfrom flask_psp_connector import PSPConnector\n"
         f"app = Flask('probe')\napp.config.update(TESTING=True, PSP_DATABASE_URL={url!r})\nPSPConnector(app)\n"
         "print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))"],
        cwd=Path(__file__).resolve().parents[3], capture_output=True, text=True, timeout=120)
    assert started.returncode == 0, started.stderr
    assert started.stdout.strip() == "[]"
