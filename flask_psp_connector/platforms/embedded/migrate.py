"""Schema migrations (Alembic), run in code: no ``alembic.ini`` is needed.

Each set of migrations keeps its own version table, so the store's and a host app's
(the demo shop's) live side by side in one database. :func:`upgrade` brings a database
to the head revision: it is idempotent, and safe when several processes start on one
new database at once (PostgreSQL: an advisory lock; SQLite: the write lock).
"""

from __future__ import annotations

import zlib
from functools import cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from flask_psp_connector.platforms.embedded.database import Database

#: Where the embedded store's migrations are, and the table that records its revision.
STORE_MIGRATIONS = str(Path(__file__).with_name("migrations"))
STORE_VERSION_TABLE = "psp_alembic_version"


def upgrade_store(database: Database) -> None:
    """Bring the embedded store's tables (carts to gateway callbacks) to the head revision."""
    upgrade(database, STORE_MIGRATIONS, STORE_VERSION_TABLE)


def upgrade(database: Database, script_location: str, version_table: str) -> None:
    """Bring ``database`` to the head of the migrations at ``script_location``.

    A database already at head costs one read; the upgrade itself runs in one
    transaction, under a lock, and re-reads the revision once it holds it.
    """
    head = _head(script_location)
    # Whoever waited for the lock finds the revision the holder left, and has nothing to do.
    with database.connection(write=True) as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(version_table)})
        if current_revision(connection, version_table) == head:
            return
        config = _config(script_location)
        config.attributes.update(connection=connection, version_table=version_table)
        command.upgrade(config, "head")


def current_revision(connection: Connection, version_table: str) -> str | None:
    """The revision ``connection``'s database is at (``None``: no migration has run)."""
    context = MigrationContext.configure(connection, opts={"version_table": version_table})
    return context.get_current_revision()


def run_environment(context: Any) -> None:
    """The body of a migrations folder's ``env.py`` (``context`` is ``alembic.context``):
    migrate on the connection the caller holds."""
    environment: EnvironmentContext = context
    attributes = environment.config.attributes
    environment.configure(connection=attributes["connection"], version_table=attributes["version_table"])
    with environment.begin_transaction():
        environment.run_migrations()


def _config(script_location: str) -> Config:
    config = Config()
    config.set_main_option("script_location", script_location)
    return config


@cache
def _head(script_location: str) -> str:
    head = ScriptDirectory.from_config(_config(script_location)).get_current_head()
    if head is None:
        raise RuntimeError(f"{script_location} has no migrations")
    return head


def _lock_key(version_table: str) -> int:
    """A stable advisory-lock key per set of migrations (a signed 32-bit integer)."""
    return zlib.crc32(version_table.encode()) - 2**31
