"""The demo shop's own tables (accounts, sign-ins), in the connector's database.

They have their own metadata and their own migrations, recorded in their own version
table (``shop_alembic_version``): the shop brings them to the head revision when it
starts, the way the connector does its store's.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Column, DateTime, MetaData, String, Table

from flask_psp_connector.platforms.embedded.database import Database
from flask_psp_connector.platforms.embedded.migrate import upgrade
from flask_psp_connector.state import connector_state

#: Where the shop's migrations are, and the table that records their revision.
SHOP_MIGRATIONS = str(Path(__file__).with_name("migrations"))
SHOP_VERSION_TABLE = "shop_alembic_version"

#: The metadata every table of the shop is defined on.
shop_metadata = MetaData()

#: Customer accounts (see :mod:`demo_shop.accounts`).
accounts_table = Table(
    "shop_accounts",
    shop_metadata,
    Column("id", String(36), primary_key=True),
    Column("email", String(254), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("customer_id", String(36), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

#: Current sign-ins (see :mod:`demo_shop.logins`).
logins_table = Table(
    "shop_logins",
    shop_metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("subject", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


def create_tables(database: Database) -> None:
    """Bring the shop's tables to the head revision (idempotent; safe from several workers)."""
    upgrade(database, SHOP_MIGRATIONS, SHOP_VERSION_TABLE)


def shop_database() -> Database:
    """The current app's database: the connector's embedded store's."""
    database = connector_state().database
    if database is None:
        raise RuntimeError("The demo shop needs the connector's embedded store.")
    return database
