"""Schema migrations (Alembic), run in code: no ``alembic.ini`` is needed.

Each set of migrations keeps its own version table, so the store's and a host app's
(the demo shop's) live side by side in one database. :func:`upgrade` brings a database
to the head revision: it is idempotent, and safe when several processes start on one
new database at once (PostgreSQL: an advisory lock; SQLite: the write lock).
"""

from __future__ import annotations

import ast
import zlib
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, column, inspect, select, table, text

from flask_psp_connector.platforms.embedded.database import Database

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.runtime.environment import EnvironmentContext

#: Where the embedded store's migrations are, and the table that records its revision.
STORE_MIGRATIONS = str(Path(__file__).with_name("migrations"))
STORE_VERSION_TABLE = "psp_alembic_version"
#: What a revision file declares (``script.py.mako`` writes both as plain assignments).
_DECLARED = ("revision", "down_revision")


def upgrade_store(database: Database) -> None:
    """Bring the embedded store's tables (carts to gateway callbacks) to the head revision."""
    upgrade(database, STORE_MIGRATIONS, STORE_VERSION_TABLE)


def upgrade(database: Database, script_location: str, version_table: str) -> None:
    """Bring ``database`` to the head of the migrations at ``script_location``.

    A database already at head costs one read, and Alembic (some megabytes of every
    process that imports it) is imported only when there is something to upgrade. The
    upgrade itself runs in one transaction, under a lock, and re-reads the revision once
    it holds it.
    """
    head = _head(script_location)
    # Whoever waited for the lock finds the revision the holder left, and has nothing to do.
    with database.connection(write=True) as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(version_table)})
        if current_revision(connection, version_table) == head:
            return
        from alembic import command

        config = _config(script_location)
        config.attributes.update(connection=connection, version_table=version_table)
        command.upgrade(config, "head")


def current_revision(connection: Connection, version_table: str) -> str | None:
    """The revision ``connection``'s database is at (``None``: no migration has run)."""
    if not inspect(connection).has_table(version_table):
        return None
    revision = connection.scalar(select(column("version_num")).select_from(table(version_table)))
    return None if revision is None else str(revision)


def run_environment(context: Any) -> None:
    """The body of a migrations folder's ``env.py`` (``context`` is ``alembic.context``):
    migrate on the connection the caller holds."""
    environment: EnvironmentContext = context
    attributes = environment.config.attributes
    environment.configure(connection=attributes["connection"], version_table=attributes["version_table"])
    with environment.begin_transaction():
        environment.run_migrations()


def _config(script_location: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", script_location)
    return config


@cache
def _head(script_location: str) -> str:
    """The one revision of ``script_location``'s ``versions`` that no other revision follows,
    read from the revision files' ``revision`` and ``down_revision`` (as Alembic reads them)."""
    revisions: set[str] = set()
    followed: set[str] = set()
    for path in Path(script_location, "versions").glob("*.py"):
        declared: dict[str, Any] = {}
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None
            if isinstance(node, ast.Assign) and isinstance(target, ast.Name) and target.id in _DECLARED:
                declared[target.id] = ast.literal_eval(node.value)
        revisions.add(declared["revision"])
        down = declared.get("down_revision")
        followed.update((down,) if isinstance(down, str) else down or ())
    heads = revisions - followed
    if len(heads) != 1:
        raise RuntimeError(f"{script_location} has {len(heads)} heads: {sorted(heads)}")
    return heads.pop()


def _lock_key(version_table: str) -> int:
    """A stable advisory-lock key per set of migrations (a signed 32-bit integer)."""
    return zlib.crc32(version_table.encode()) - 2**31
