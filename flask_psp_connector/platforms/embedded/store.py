"""The embedded store: carts, payments, orders and sessions in SQLAlchemy.

SQLite by default, PostgreSQL in production. Correctness under several workers comes
from the database: row locks (``SELECT ... FOR UPDATE`` on PostgreSQL, ``BEGIN
IMMEDIATE`` on SQLite, whose writers first queue in the kernel: see ``sqlite_writers``),
optimistic versions and unique indexes, never process memory.

Host apps use it through :attr:`PSPConnector.platform <flask_psp_connector.PSPConnector.platform>`::

    cart = psp.platform.create_cart("EUR", line_items=[LineItemDraft("tee", "T-shirt", 2, 1500)])
    session = psp.platform.open_session(cart.id, merchant_return_url="https://shop.example/return")
    # hand session.id to the browser enabler as X-Session-Id
"""

from __future__ import annotations

from flask_psp_connector.platforms.embedded.carts import Carts, LineItemDraft
from flask_psp_connector.platforms.embedded.customers import Customers
from flask_psp_connector.platforms.embedded.database import Database
from flask_psp_connector.platforms.embedded.inbox import Inbox
from flask_psp_connector.platforms.embedded.migrate import upgrade_store
from flask_psp_connector.platforms.embedded.orders import Orders
from flask_psp_connector.platforms.embedded.payments import Payments

__all__ = ["LineItemDraft", "LocalPlatform"]


class LocalPlatform(Carts, Payments, Orders, Customers, Inbox):
    """The embedded commerce platform (see the module docstring for an example).

    :param database: where its tables are; other users of the database (the gateways'
        store, the token server, a host app) are given the same :class:`Database`.
    :param session_ttl: how long a checkout session lasts, in seconds.
    """

    def __init__(self, database: Database, *, session_ttl: int = 3600) -> None:
        self._db = database
        self.session_ttl = session_ttl

    @classmethod
    def from_url(cls, url: str, *, session_ttl: int = 3600) -> LocalPlatform:
        """Build the store on the database at ``url``."""
        return cls(Database.from_url(url), session_ttl=session_ttl)

    @property
    def database(self) -> Database:
        """The database the store keeps its tables in."""
        return self._db

    def create_schema(self) -> None:
        """Bring the store's tables to the current schema (Alembic's head revision):
        idempotent, also when several processes start on one new store at once."""
        upgrade_store(self._db)

    def check_health(self) -> None:
        """Raise :class:`PlatformUnavailable` if the database does not answer."""
        self._db.check_health()
