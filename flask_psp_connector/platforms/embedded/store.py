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

import hashlib
import secrets
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict, dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    Connection,
    Engine,
    Select,
    bindparam,
    create_engine,
    event,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from flask_psp_connector.domain.inbox import EventFailure, EventReceipt, EventStatus
from flask_psp_connector.domain.model import (
    Address,
    Cart,
    CartState,
    CheckoutSession,
    Customer,
    LineItem,
    Order,
    SavedPaymentMethod,
)
from flask_psp_connector.domain.money import Money, iso_fraction_digits
from flask_psp_connector.domain.payment import (
    AddTransaction,
    Payment,
    StaleReason,
    Transaction,
    TransactionDraft,
    TransactionState,
    TransactionType,
    match_transaction,
)
from flask_psp_connector.domain.settle import OrderPaymentState, PaymentChanges, order_payment_state, settle
from flask_psp_connector.errors import (
    ConcurrentModification,
    InvalidOperation,
    PlatformUnavailable,
    ResourceNotFound,
)
from flask_psp_connector.observability import telemetry
from flask_psp_connector.platforms.embedded.schema import (
    Base,
    CartRow,
    CustomerRow,
    EventFailureRow,
    LineItemRow,
    OrderRow,
    PaymentRow,
    SavedPaymentMethodRow,
    SessionRow,
    StripeEventRow,
    TransactionRow,
    utcnow,
)
from flask_psp_connector.platforms.embedded.sqlite_writers import WriterQueue
from flask_psp_connector.ports import PaymentDraft, PaymentRef

T = TypeVar("T")
_UNSET: Any = object()
_WRITE_ATTEMPTS = 5
_WRITE_OPTION = "psp_write"


@dataclass(frozen=True, slots=True)
class LineItemDraft:
    """A product to put in a cart.

    :param unit_price: price of one unit in the cart currency's minor units.
    """

    sku: str
    name: str
    quantity: int
    unit_price: int

    def __post_init__(self) -> None:
        if type(self.quantity) is not int or not 0 < self.quantity <= 10_000:
            raise InvalidOperation("Quantity must be a whole number from 1 to 10000.")
        if type(self.unit_price) is not int or self.unit_price < 0:
            raise InvalidOperation("Unit price must be a non-negative whole number of minor units.")
        if not self.sku or not self.name:
            raise InvalidOperation("A line item needs a SKU and a name.")


def _operation(work: Callable[..., Any]) -> str:
    """The store method a unit of work belongs to (``get_cart``): a metric label and span name."""
    parts = work.__qualname__.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "LocalPlatform" else parts[0]


def normalize_database_url(url: str) -> str:
    """Accept Heroku's ``postgres://`` and route PostgreSQL through psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def hash_secret(value: str) -> str:
    """SHA-256 hex digest used to store bearer credentials (session ids, tokens)."""
    return hashlib.sha256(value.encode()).hexdigest()


def make_engine(url: str) -> Engine:
    """Create an engine tuned for concurrent writers on SQLite or PostgreSQL."""
    url = normalize_database_url(url)
    if not url.startswith("sqlite"):
        return create_engine(url, pool_size=10, max_overflow=10, pool_recycle=1800)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

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


class LocalPlatform:
    """The embedded commerce platform (see the module docstring for an example)."""

    def __init__(self, engine: Engine, *, session_ttl: int = 3600) -> None:
        self.engine = engine
        self.session_ttl = session_ttl
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        database = engine.url.database
        on_file = engine.dialect.name == "sqlite" and database not in (None, "", ":memory:")
        self._writers = WriterQueue(database) if on_file else None

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> LocalPlatform:
        """Build the store on the database at ``url``."""
        return cls(make_engine(url), **kwargs)

    @staticmethod
    def default_url(instance_path: str) -> str:
        """The SQLite file in the app's instance folder."""
        Path(instance_path).mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{Path(instance_path) / 'psp.sqlite3'}"

    def create_schema(self) -> None:
        """Create the tables that do not exist yet and add the nullable columns that a
        store created by an earlier release lacks (idempotent, also when several processes
        start on one new store at once: the one that loses the race finds the tables made)."""
        for attempt in range(3):
            try:
                Base.metadata.create_all(self.engine)
                break
            except OperationalError:
                if attempt == 2:
                    raise
                time.sleep(0.2)
        with self.engine.begin() as connection:
            existing = inspect(connection)
            for table in Base.metadata.sorted_tables:
                present = {column["name"] for column in existing.get_columns(table.name)}
                for column in table.columns:
                    if column.name not in present and column.nullable:
                        kind = column.type.compile(dialect=connection.dialect)
                        connection.execute(text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}'))

    # -- transactions ------------------------------------------------------------

    @contextmanager
    def db_session(self, *, write: bool = False) -> Iterator[Session]:
        """One database transaction: committed on success, rolled back on error."""
        try:
            with self._turn(write), self._sessions() as session, session.begin():
                if write:
                    session.connection(execution_options={_WRITE_OPTION: True})
                yield session
        except OperationalError as exc:
            raise PlatformUnavailable("The payment store is unavailable.") from exc

    def _turn(self, write: bool) -> AbstractContextManager[None]:
        """A write's place in the SQLite writers' queue (nothing to wait for otherwise)."""
        return self._writers.turn() if write and self._writers is not None else nullcontext()

    @contextmanager
    def _connection(self, *, write: bool = False) -> Iterator[Connection]:
        """One database transaction on a bare connection (the hot paths skip the ORM)."""
        try:
            with self._turn(write), self.engine.connect() as connection:
                if write:
                    connection.execution_options(**{_WRITE_OPTION: True})
                with connection.begin():
                    yield connection
        except OperationalError as exc:
            raise PlatformUnavailable("The payment store is unavailable.") from exc

    def _run(self, work: Callable[[Any], T], *, write: bool = False, core: bool = False) -> T:
        """Run ``work`` in one transaction, on an ORM session (or a bare connection if ``core``).

        Lost optimistic races are retried, and so is a pooled connection the server had
        closed (instead of pinging the server before every transaction).
        """
        with telemetry.external_call("store", _operation(work)):
            return self._attempts(work, write=write, core=core)

    def _attempts(self, work: Callable[[Any], T], *, write: bool, core: bool) -> T:
        transaction = self._connection if core else self.db_session
        reconnected = False
        for attempt in range(_WRITE_ATTEMPTS):
            try:
                with transaction(write=write) as handle:
                    return work(handle)
            except (StaleDataError, IntegrityError):
                if attempt == _WRITE_ATTEMPTS - 1:
                    raise ConcurrentModification("The resource was modified concurrently; try again.") from None
            except PlatformUnavailable as exc:
                if reconnected or not getattr(exc.__cause__, "connection_invalidated", False):
                    raise
                reconnected = True
        raise AssertionError("unreachable")

    def _write(self, work: Callable[[Session], T]) -> T:
        return self._run(work, write=True)

    def check_health(self) -> None:
        """Raise :class:`PlatformUnavailable` if the database does not answer."""
        self._run(lambda session: session.execute(text("SELECT 1")))

    # -- carts -------------------------------------------------------------------

    def create_cart(
        self,
        currency_code: str,
        *,
        line_items: Iterable[LineItemDraft] = (),
        customer_id: str | None = None,
        customer_email: str | None = None,
        shipping_address: Address | None = None,
        billing_address: Address | None = None,
        shipping_amount: int = 0,
        tax_amount: int = 0,
        shipping_method_name: str | None = None,
        country: str | None = None,
        store_key: str | None = None,
        tax_calculation_references: Iterable[str] = (),
    ) -> Cart:
        """Create an active cart; amounts are minor units of ``currency_code``.

        ``country`` and ``store_key`` select a behaviour rule (STRIPE_PAYMENT_BEHAVIOR_RULES);
        ``tax_calculation_references`` are Stripe Tax calculation ids.
        """
        Money.of(0, currency_code)  # validates the code
        row = CartRow(
            id=str(uuid.uuid4()),
            currency_code=currency_code.upper(),
            state=CartState.ACTIVE.value,
            customer_id=customer_id,
            customer_email=customer_email,
            shipping_method_name=shipping_method_name,
            country=country.upper() if country else None,
            store_key=store_key,
            tax_calculation_references=_references(tax_calculation_references),
        )
        self._assign(row, list(line_items), shipping_address, billing_address, shipping_amount, tax_amount)

        def work(session: Session) -> Cart:
            session.add(row)
            session.flush()
            return _cart(row)

        return self._write(work)

    def update_cart(
        self,
        cart_id: str,
        *,
        version: int | None = None,
        line_items: Iterable[LineItemDraft] | None = None,
        customer_id: str | None = _UNSET,
        customer_email: str | None = _UNSET,
        shipping_address: Address | None = _UNSET,
        billing_address: Address | None = _UNSET,
        shipping_amount: int | None = None,
        tax_amount: int | None = None,
        shipping_method_name: str | None = _UNSET,
        country: str | None = _UNSET,
        store_key: str | None = _UNSET,
        tax_calculation_references: Iterable[str] | None = None,
    ) -> Cart:
        """Change an active cart. Arguments left out keep their value.

        :param version: when given, the update applies only to that version of the cart.
        :param line_items: replaces every line item.
        :raises ConcurrentModification: if ``version`` is not the current version.
        :raises InvalidOperation: if the cart is already ordered.
        """
        items = None if line_items is None else list(line_items)

        def work(session: Session) -> Cart:
            row = self._cart_row(session, cart_id, lock=True)
            if version is not None and row.version != version:
                raise ConcurrentModification(f"Cart {cart_id} has version {row.version}, not {version}.")
            if row.state != CartState.ACTIVE.value:
                raise InvalidOperation("The cart has already been ordered.")
            if customer_id is not _UNSET:
                row.customer_id = customer_id
            if customer_email is not _UNSET:
                row.customer_email = customer_email
            if shipping_method_name is not _UNSET:
                row.shipping_method_name = shipping_method_name
            if country is not _UNSET:
                row.country = country.upper() if country else None
            if store_key is not _UNSET:
                row.store_key = store_key
            if tax_calculation_references is not None:
                row.tax_calculation_references = _references(tax_calculation_references)
            self._assign(
                row,
                items,
                row.shipping_address if shipping_address is _UNSET else shipping_address,
                row.billing_address if billing_address is _UNSET else billing_address,
                row.shipping_amount if shipping_amount is None else shipping_amount,
                row.tax_amount if tax_amount is None else tax_amount,
            )
            session.flush()
            return _cart(row)

        return self._write(work)

    @staticmethod
    def _assign(
        row: CartRow,
        items: list[LineItemDraft] | None,
        shipping_address: Address | dict[str, Any] | None,
        billing_address: Address | dict[str, Any] | None,
        shipping_amount: int,
        tax_amount: int,
    ) -> None:
        for amount in (shipping_amount, tax_amount):
            if type(amount) is not int or amount < 0:
                raise InvalidOperation("Shipping and tax must be non-negative whole numbers of minor units.")
        if items is not None:
            row.line_items = [
                LineItemRow(
                    id=str(uuid.uuid4()),
                    position=position,
                    sku=item.sku,
                    name=item.name,
                    quantity=item.quantity,
                    unit_price=item.unit_price,
                )
                for position, item in enumerate(items)
            ]
        row.shipping_address = asdict(shipping_address) if isinstance(shipping_address, Address) else shipping_address
        row.billing_address = asdict(billing_address) if isinstance(billing_address, Address) else billing_address
        row.shipping_amount = shipping_amount
        row.tax_amount = tax_amount

    def get_cart(self, cart_id: str) -> Cart:
        """Return the cart or raise :class:`ResourceNotFound`."""
        return self._run(lambda session: _cart(self._cart_row(session, cart_id)))

    def get_cart_and_payments(self, cart_id: str) -> tuple[Cart, list[Payment]]:
        """The cart and its payments (oldest first) from one snapshot."""

        def read(session: Session) -> tuple[Cart, list[Payment]]:
            cart = _cart(self._cart_row(session, cart_id))
            return cart, [_payment(p) for p in session.scalars(_payments_of(cart_id))]

        return self._run(read)

    @staticmethod
    def _cart_row(session: Session, cart_id: str, *, lock: bool = False) -> CartRow:
        row = session.get(CartRow, cart_id, with_for_update=lock)
        if row is None:
            raise ResourceNotFound(f"Cart {cart_id} not found.")
        return row

    # -- sessions ----------------------------------------------------------------

    def open_session(
        self,
        cart_id: str,
        *,
        merchant_return_url: str | None = None,
        allowed_payment_methods: Iterable[str] = (),
        ttl: int | None = None,
    ) -> CheckoutSession:
        """Open a checkout session for the cart; its ``id`` is the browser's ``X-Session-Id``.

        The id is returned only here: the store keeps a hash of it.
        """
        ttl = self.session_ttl if ttl is None else ttl
        if ttl <= 0:
            raise ValueError("a session's ttl must be positive")
        session_id = secrets.token_urlsafe(32)
        expires_at = utcnow() + timedelta(seconds=ttl)
        methods = list(allowed_payment_methods)

        def work(session: Session) -> CheckoutSession:
            if session.get(CartRow, cart_id) is None:
                raise ResourceNotFound(f"Cart {cart_id} not found.")
            session.add(
                SessionRow(
                    id_hash=hash_secret(session_id),
                    cart_id=cart_id,
                    merchant_return_url=merchant_return_url,
                    allowed_payment_methods=methods,
                    expires_at=expires_at,
                )
            )
            return CheckoutSession(session_id, cart_id, merchant_return_url, tuple(methods), expires_at)

        return self._write(work)

    def get_session(self, session_id: str) -> CheckoutSession | None:
        """Return the unexpired session with this id, else ``None``."""

        def read(session: Session) -> CheckoutSession | None:
            row = session.get(SessionRow, hash_secret(session_id))
            if row is None or row.expires_at <= utcnow():
                return None
            return CheckoutSession(
                session_id, row.cart_id, row.merchant_return_url, tuple(row.allowed_payment_methods), row.expires_at
            )

        return self._run(read)

    # -- payments ----------------------------------------------------------------

    def get_payment(self, payment_id: str) -> Payment:
        """Return the payment or raise :class:`ResourceNotFound`."""

        def read(session: Session) -> Payment:
            row = session.get(PaymentRow, payment_id)
            if row is None:
                raise ResourceNotFound(f"Payment {payment_id} not found.")
            return _payment(row)

        return self._run(read)

    def find_payment_by_interface_id(self, interface_id: str) -> Payment | None:
        """Return the payment backed by this PaymentIntent, if any."""
        query = select(PaymentRow).where(PaymentRow.interface_id == interface_id)
        return self._run(lambda session: next((_payment(row) for row in session.scalars(query)), None))

    def payments_of_cart(self, cart_id: str) -> list[Payment]:
        """Return the cart's payments, oldest first."""
        return self._run(lambda session: [_payment(row) for row in session.scalars(_payments_of(cart_id))])

    def list_payments(self, *, limit: int = 50, offset: int = 0) -> list[Payment]:
        """Return payments, newest first (for back offices)."""
        query = select(PaymentRow).order_by(PaymentRow.created_at.desc()).limit(limit).offset(offset)
        return self._run(lambda session: [_payment(row) for row in session.scalars(query)])

    def create_payment(self, draft: PaymentDraft) -> Payment:
        """Create the payment on its cart in one transaction; an existing id is returned as is."""

        def work(session: Session) -> Payment:
            existing = session.get(PaymentRow, draft.id)
            if existing is not None:
                return _payment(existing)
            if session.scalar(select(CartRow.id).where(CartRow.id == draft.cart_id)) is None:
                raise ResourceNotFound(f"Cart {draft.cart_id} not found.")
            money = draft.amount_planned
            row = PaymentRow(
                id=draft.id,
                cart_id=draft.cart_id,
                amount=money.cent_amount,
                currency_code=money.currency_code,
                fraction_digits=money.fraction_digits,
                payment_interface=draft.payment_interface,
                interface_id=draft.interface_id,
                client_secret=draft.client_secret,
                intent_variant=draft.intent_variant,
                cart_fingerprint=draft.cart_fingerprint or None,
                cart_version=draft.cart_version or None,
            )
            row.transactions = [_transaction_row(d, seq) for seq, d in enumerate(draft.transactions, 1)]
            session.add(row)
            session.flush()
            return _payment(row)

        return self._write(work)

    def apply_transactions(
        self,
        payment_id: str,
        drafts: Iterable[TransactionDraft],
        *,
        interface_id: str | None = None,
        method: str | None = None,
    ) -> Payment:
        """Record ``drafts`` under a row lock with the matching rules of the model."""
        return self.apply_changes(payment_id, PaymentChanges(tuple(drafts), interface_id, method))

    def apply_changes(self, payment_id: str, changes: PaymentChanges, *, cart_id: str | None = None) -> Payment:
        """Record ``changes`` under the payment's row lock; settle it with ``create_order``
        (under the cart's row lock too, taken after the payment's). ``cart_id`` is not
        needed here: the payment is found by its key."""

        def work(connection: Connection) -> Payment:
            locked = _locked_payment(connection, PaymentRef(payment_id, None))
            if locked is None:
                raise ResourceNotFound(f"Payment {payment_id} not found.")
            return _change(connection, locked, changes)

        return self._run(work, write=True, core=True)

    def process_event(
        self,
        event_id: str,
        event_type: str,
        payment: PaymentRef | None,
        plan: Callable[[Payment], PaymentChanges],
        *,
        detail: str = "",
        replay: bool = False,
    ) -> EventReceipt:
        """Apply a Stripe event's effects and record it in the inbox, in one transaction.

        ``plan`` decides the changes from the payment's state under its row lock. An
        event id already in the inbox changes nothing (unless ``replay``); without a
        payment the event is recorded as ignored.
        """

        def work(connection: Connection) -> EventReceipt:
            locked = None if payment is None else _locked_payment(connection, payment)
            payment_id = None if locked is None else locked.payment.id
            status, note = EventStatus.PROCESSED, detail
            if locked is None:
                status = EventStatus.IGNORED
                note = detail if payment is None else "belongs to no payment of ours"
            if not _record_event(connection, event_id, event_type, status, payment_id, note[:512], replay=replay):
                inbox = connection.execute(_EVENT_BY_ID, {"event_id": event_id}).one()
                return EventReceipt(EventStatus.DUPLICATE, inbox.payment_id, inbox.detail)
            if locked is not None:
                _change(connection, locked, plan(locked.payment))
            return EventReceipt(status, payment_id, note[:512])

        return self._run(work, write=True, core=True)

    def resolve_payment_id(self, ref: PaymentRef) -> str | None:
        """Our payment's id, by its id if it exists, else by its PaymentIntent id."""
        return self._run(lambda connection: _payment_id(connection, ref, _PAYMENT_ID_BY), core=True)

    def recent_events(self, limit: int = 50) -> list[EventReceipt]:
        """The newest inbox entries (for ``flask psp events list``)."""
        query = select(StripeEventRow).order_by(StripeEventRow.received_at.desc()).limit(limit)
        return self._run(
            lambda session: [
                EventReceipt(EventStatus(r.status), r.payment_id, r.detail, r.id, r.type, r.received_at)
                for r in session.scalars(query)
            ]
        )

    def record_event_failure(self, event_id: str, event_type: str, error: str, payload: str) -> None:
        """Keep a failed event, or count another failed attempt of it, in a transaction of its own."""
        now = utcnow()

        def work(connection: Connection) -> None:
            insert_for = postgresql_insert if connection.dialect.name == "postgresql" else sqlite_insert
            statement = insert_for(_failures).values(
                event_id=event_id, type=event_type[:128], error=error[:512], attempts=1, first_seen=now, last_seen=now,
                payload=payload)
            connection.execute(statement.on_conflict_do_update(index_elements=[_failures.c.event_id], set_={
                "attempts": _failures.c.attempts + 1, "last_seen": now, "error": error[:512]}))

        self._run(work, write=True, core=True)

    def event_failures(self, limit: int = 50) -> list[EventFailure]:
        """The most recently failed events, newest first; ``resolved`` once in the inbox."""
        query = (select(_failures, _events.c.id.label("inbox_id"))
                 .outerjoin(_events, _events.c.id == _failures.c.event_id)
                 .order_by(_failures.c.last_seen.desc()).limit(limit))
        return self._run(lambda connection: [
            EventFailure(r.event_id, r.type, r.error, r.attempts, r.first_seen, r.last_seen, r.payload,
                         resolved=r.inbox_id is not None)
            for r in connection.execute(query)], core=True)

    def stored_event(self, event_id: str) -> str | None:
        """The payload kept for a failed event, if any."""
        query = select(_failures.c.payload).where(_failures.c.event_id == event_id)
        return self._run(lambda connection: connection.scalar(query), core=True)

    # -- orders ------------------------------------------------------------------

    def create_order(self, cart_id: str) -> Order:
        """Turn the cart into an order exactly once; later calls return that order."""

        def work(session: Session) -> Order:
            row = _order_for_cart(session, cart_id, None)
            _sync_order_payment_state(session, cart_id)
            return _order(row, _payment_ids(session, cart_id))

        return self._write(work)

    def find_order_by_cart(self, cart_id: str) -> Order | None:
        """Return the order the cart became, if any."""

        def read(session: Session) -> Order | None:
            row = session.scalars(select(OrderRow).where(OrderRow.cart_id == cart_id)).first()
            return None if row is None else _order(row, _payment_ids(session, cart_id))

        return self._run(read)

    def list_orders(self, limit: int = 50, offset: int = 0, *, customer_id: str | None = None) -> list[Order]:
        """Return orders, newest first (for back offices); only the customer's with ``customer_id``."""
        query = select(OrderRow).order_by(OrderRow.created_at.desc(), OrderRow.id).limit(limit).offset(offset)
        if customer_id is not None:
            query = query.join(CartRow, CartRow.id == OrderRow.cart_id).where(CartRow.customer_id == customer_id)
        return self._run(
            lambda session: [_order(row, _payment_ids(session, row.cart_id)) for row in session.scalars(query)]
        )

    # -- customers and their saved payment methods -----------------------------------

    def create_customer(self, email: str, name: str = "") -> Customer:
        """Create a customer.

        :raises InvalidOperation: when the email is empty or already taken.
        """
        email = email.strip().lower()
        if not email:
            raise InvalidOperation("A customer needs an email address.")

        def work(session: Session) -> Customer:
            if session.scalar(select(CustomerRow.id).where(CustomerRow.email == email)) is not None:
                raise InvalidOperation("A customer with this email already exists.")
            row = CustomerRow(id=str(uuid.uuid4()), email=email, name=name.strip())
            session.add(row)
            session.flush()
            return _customer(row)

        try:
            return self._write(work)
        except ConcurrentModification:
            # Only the unique email index makes this insert conflict.
            raise InvalidOperation("A customer with this email already exists.") from None

    def get_customer(self, customer_id: str) -> Customer | None:
        """Return the customer, or ``None``."""

        def read(session: Session) -> Customer | None:
            row = session.get(CustomerRow, customer_id)
            return None if row is None else _customer(row)

        return self._run(read)

    def find_customer_by_email(self, email: str) -> Customer | None:
        """Return the customer with this email (case-insensitive), or ``None``."""
        query = select(CustomerRow).where(CustomerRow.email == email.strip().lower())
        return self._run(lambda session: next((_customer(row) for row in session.scalars(query)), None))

    def set_stripe_customer_id(self, customer_id: str, stripe_customer_id: str) -> Customer:
        """Link the customer to their Stripe Customer.

        :raises ResourceNotFound: when there is no such customer.
        """

        def work(session: Session) -> Customer:
            row = session.get(CustomerRow, customer_id, with_for_update=True)
            if row is None:
                raise ResourceNotFound(f"Customer {customer_id} not found.")
            row.stripe_customer_id = stripe_customer_id
            session.flush()
            return _customer(row)

        return self._write(work)

    def saved_payment_methods(self, customer_id: str) -> list[SavedPaymentMethod]:
        """The customer's saved payment methods, oldest first."""
        query = (
            select(SavedPaymentMethodRow)
            .where(SavedPaymentMethodRow.customer_id == customer_id)
            .order_by(SavedPaymentMethodRow.created_at, SavedPaymentMethodRow.id)
        )
        return self._run(lambda session: [_saved_method(row) for row in session.scalars(query)])

    def record_saved_payment_method(
        self,
        customer_id: str,
        stripe_payment_method_id: str,
        brand: str,
        last4: str,
        exp_month: int | None,
        exp_year: int | None,
        *,
        method: str = "",
    ) -> SavedPaymentMethod:
        """Record a saved payment method; one record per (customer, payment method).

        ``method`` (the Stripe PaymentMethod's type) is not kept: ``brand`` says enough here.

        :raises ResourceNotFound: when there is no such customer.
        """
        existing_query = select(SavedPaymentMethodRow).where(
            SavedPaymentMethodRow.customer_id == customer_id,
            SavedPaymentMethodRow.stripe_payment_method_id == stripe_payment_method_id,
        )

        def work(session: Session) -> SavedPaymentMethod:
            existing = session.scalars(existing_query).first()
            if existing is not None:
                return _saved_method(existing)
            if session.get(CustomerRow, customer_id) is None:
                raise ResourceNotFound(f"Customer {customer_id} not found.")
            row = SavedPaymentMethodRow(
                id=str(uuid.uuid4()),
                customer_id=customer_id,
                stripe_payment_method_id=stripe_payment_method_id,
                brand=brand[:32],
                last4=last4[-4:],
                exp_month=exp_month,
                exp_year=exp_year,
            )
            session.add(row)
            session.flush()
            return _saved_method(row)

        # A concurrent recording of the same method loses on the unique index, is
        # retried by _run and then finds the winner's record.
        return self._write(work)

    def remove_saved_payment_method(self, customer_id: str, saved_id: str) -> SavedPaymentMethod | None:
        """Delete one of this customer's saved methods; another customer's is never touched."""
        query = select(SavedPaymentMethodRow).where(
            SavedPaymentMethodRow.id == saved_id, SavedPaymentMethodRow.customer_id == customer_id
        )

        def work(session: Session) -> SavedPaymentMethod | None:
            row = session.scalars(query).first()
            if row is None:
                return None
            removed = _saved_method(row)
            session.delete(row)
            return removed

        return self._write(work)


# -- shared pieces of write transactions ------------------------------------------


# The hot paths (webhooks, payment operations) use these prebuilt Core statements with
# bound parameters: SQLAlchemy compiles each once, not for every event.
_payments = PaymentRow.__table__
_transactions = TransactionRow.__table__
_events = StripeEventRow.__table__
_failures = EventFailureRow.__table__
_orders = OrderRow.__table__
_TRANSACTION_COLUMNS = [column.label(f"t_{column.name}") for column in _transactions.c]
_PAYMENT_KEYS = (_payments.c.id, _payments.c.interface_id)
_PAYMENT_ID_BY = [select(_payments.c.id).where(key == bindparam("key")) for key in _PAYMENT_KEYS]
_LOCK_PAYMENT_BY = [statement.with_for_update() for statement in _PAYMENT_ID_BY]
# The payment, its transactions and whether its cart has an order, in one round trip. It is
# read after the lock is held, in a statement of its own: under READ COMMITTED a statement
# that waited for a row lock sees the rows of its other tables as they were before the wait.
_PAYMENT_WITH_TRANSACTIONS = (
    select(
        _payments,
        select(_orders.c.id).where(_orders.c.cart_id == _payments.c.cart_id).scalar_subquery().label("order_id"),
        *_TRANSACTION_COLUMNS,
    )
    .outerjoin(_transactions, _transactions.c.payment_id == _payments.c.id)
    .where(_payments.c.id == bindparam("payment_id"))
    .order_by(_transactions.c.seq)
)
_ADD_TRANSACTION = insert(_transactions)
_CHANGE_STATE = update(_transactions).where(_transactions.c.id == bindparam("transaction_id")).values(
    state=bindparam("new_state"))
_BUMP_PAYMENT = (
    update(_payments)
    .where(_payments.c.id == bindparam("payment_id"), _payments.c.version == bindparam("old_version"))
    .values(version=bindparam("new_version"), updated_at=bindparam("now"),
            interface_id=bindparam("new_interface_id"), method=bindparam("new_method"),
            stale_reason=bindparam("new_stale_reason"))
)
_RECORD_EVENT = {
    dialect: insert_for(_events).on_conflict_do_nothing().returning(_events.c.id)
    for dialect, insert_for in (("sqlite", sqlite_insert), ("postgresql", postgresql_insert))
}
_REPLAY_EVENT = update(_events).where(_events.c.id == bindparam("event_id")).values(
    status=bindparam("new_status"), payment_id=bindparam("new_payment_id"), detail=bindparam("new_detail"))
_ORDER_OF_CART = select(_orders.c.id, _orders.c.payment_state).where(_orders.c.cart_id == bindparam("cart_id"))
_EVENT_BY_ID = select(_events.c.payment_id, _events.c.detail).where(_events.c.id == bindparam("event_id"))


@dataclass(frozen=True, slots=True)
class _LockedPayment:
    payment: Payment
    has_order: bool


def _locked_payment(connection: Connection, ref: PaymentRef) -> _LockedPayment | None:
    """The payment ``ref`` names, read under its row lock, or ``None``."""
    payment_id = _payment_id(connection, ref, _LOCK_PAYMENT_BY)
    if payment_id is None:
        return None
    rows = connection.execute(_PAYMENT_WITH_TRANSACTIONS, {"payment_id": payment_id}).all()
    row = rows[0]
    transactions = tuple(
        Transaction(t.t_id, TransactionType(t.t_type), TransactionState(t.t_state),
                    Money(t.t_amount, t.t_currency_code, t.t_fraction_digits), t.t_interaction_id, t.t_timestamp)
        for t in rows if t.t_id is not None
    )
    payment = Payment(
        id=row.id, version=row.version, cart_id=row.cart_id,
        amount_planned=Money(row.amount, row.currency_code, row.fraction_digits),
        payment_interface=row.payment_interface, interface_id=row.interface_id, method=row.method,
        transactions=transactions, client_secret=row.client_secret, created_at=row.created_at,
        intent_variant=row.intent_variant or "", cart_fingerprint=row.cart_fingerprint or "",
        cart_version=row.cart_version or 0, stale_reason=StaleReason(row.stale_reason) if row.stale_reason else None,
    )
    return _LockedPayment(payment, row.order_id is not None)


def _payment_id(connection: Connection, ref: PaymentRef, statements: list[Select[Any]]) -> str | None:
    """The id of the payment ``ref`` names: by its id first, then by its PaymentIntent id."""
    for statement, key in zip(statements, (ref.payment_id, ref.interface_id)):
        found = connection.scalar(statement, {"key": key}) if key else None
        if found is not None:
            return found
    return None


def _record_event(
    connection: Connection, event_id: str, event_type: str, status: str, payment_id: str | None, detail: str,
    *, replay: bool,
) -> bool:
    """Put the event in the inbox; False when it was there already (and not replayed)."""
    values = {"id": event_id, "type": event_type, "status": status, "payment_id": payment_id, "detail": detail,
              "received_at": utcnow()}
    if connection.execute(_RECORD_EVENT[connection.dialect.name], values).first() is not None:
        return True
    if replay:
        connection.execute(_REPLAY_EVENT, {"event_id": event_id, "new_status": status, "new_payment_id": payment_id,
                                           "new_detail": detail})
    return replay


def _apply(connection: Connection, payment: Payment, changes: PaymentChanges) -> Payment:
    """Record ``changes`` on a payment read under its row lock, with the model's matching rules."""
    current = list(payment.transactions)
    added = []
    for draft in changes.transactions:
        change = match_transaction(current, draft)
        if isinstance(change, AddTransaction):
            new = Transaction(str(uuid.uuid4()), draft.type, draft.state, draft.amount, draft.interaction_id, utcnow())
            added.append({
                "id": new.id, "payment_id": payment.id, "seq": len(current) + 1, "type": new.type.value,
                "state": new.state.value, "amount": new.amount.cent_amount, "currency_code": new.amount.currency_code,
                "fraction_digits": new.amount.fraction_digits, "interaction_id": new.interaction_id,
                "timestamp": new.timestamp})
            current.append(new)
        elif change is not None:
            connection.execute(_CHANGE_STATE, {"transaction_id": change.transaction_id, "new_state": change.state.value})
            current = [replace(t, state=change.state) if t.id == change.transaction_id else t for t in current]
    if added:
        connection.execute(_ADD_TRANSACTION, added)
    interface_id = payment.interface_id or changes.interface_id
    method = payment.method or changes.method
    stale = payment.stale_reason or changes.stale_reason
    unchanged = (interface_id, method, stale) == (payment.interface_id, payment.method, payment.stale_reason)
    if current == list(payment.transactions) and unchanged:
        return payment
    bumped = connection.execute(_BUMP_PAYMENT, {
        "payment_id": payment.id, "old_version": payment.version, "new_version": payment.version + 1,
        "now": utcnow(), "new_interface_id": interface_id, "new_method": method,
        "new_stale_reason": stale.value if stale else None})
    if bumped.rowcount != 1:
        raise StaleDataError(f"Payment {payment.id} changed under its lock.")
    return replace(payment, version=payment.version + 1, interface_id=interface_id, method=method,
                   stale_reason=stale, transactions=tuple(current))


def _change(connection: Connection, locked: _LockedPayment, changes: PaymentChanges) -> Payment:
    """Record ``changes`` on a locked payment, settle it if asked, and keep its order's state in step."""
    payment = _apply(connection, locked.payment, changes)
    if not (changes.create_order or locked.has_order):
        return payment
    with _orm(connection) as session:
        placed = False
        if changes.create_order:
            payment, placed = _settle(connection, session, payment, changes)
        if not placed:
            _sync_order_payment_state(session, payment.cart_id)
    return payment


def _settle(connection: Connection, session: Session, payment: Payment, changes: PaymentChanges) -> tuple[Payment, bool]:
    """Place the cart's order if ``payment`` pays for it as it is now; else mark it stale and undo it.

    The cart's row lock serializes the settlements of its payments, so of two payments
    racing for one cart state exactly one is kept. Returns the payment and whether the
    order was placed now (with the payment state its payments, read under that lock,
    imply: it needs no second look).
    """
    cart_row = session.get(CartRow, payment.cart_id, with_for_update=True)
    if cart_row is None:
        raise ResourceNotFound(f"Cart {payment.cart_id} not found.")
    payments = [payment if row.id == payment.id else _payment(row)
                for row in session.scalars(_payments_of(payment.cart_id).execution_options(populate_existing=True))]
    ordered = session.scalar(select(OrderRow.id).where(OrderRow.cart_id == payment.cart_id)) is not None
    verdict = settle(payment, _cart(cart_row), payments, ordered=ordered)
    if verdict.place_order:
        _new_order(session, cart_row, changes.ship_to, order_payment_state(payments))
        return payment, True
    if verdict.stale is not None:
        undo = changes.on_stale(payment, verdict.stale) if changes.on_stale else ()
        payment = _apply(connection, payment, PaymentChanges(undo, stale_reason=verdict.stale))
    return payment, False


@contextmanager
def _orm(connection: Connection) -> Iterator[Session]:
    """An ORM session inside ``connection``'s transaction (for the rarer, richer writes)."""
    with Session(bind=connection, expire_on_commit=False) as session:
        yield session
        session.flush()


def _order_for_cart(session: Session, cart_id: str, ship_to: Callable[[], Address | None] | None) -> OrderRow:
    """The cart's order, created (and the cart marked Ordered) if it has none yet; it
    ships to the cart's address, else to what ``ship_to`` finds."""
    cart_row = session.get(CartRow, cart_id, with_for_update=True)
    if cart_row is None:
        raise ResourceNotFound(f"Cart {cart_id} not found.")
    existing = session.scalars(select(OrderRow).where(OrderRow.cart_id == cart_id)).first()
    if existing is not None:
        return existing
    return _new_order(session, cart_row, ship_to, OrderPaymentState.PENDING)


def _new_order(session: Session, cart_row: CartRow, ship_to: Callable[[], Address | None] | None,
               payment_state: OrderPaymentState) -> OrderRow:
    """The order of a cart locked and found without one; the cart becomes Ordered."""
    cart = _cart(cart_row)
    shipping = cart_row.shipping_address
    if shipping is None and ship_to is not None:
        found = ship_to()
        shipping = asdict(found) if found else None
    row = OrderRow(
        id=str(uuid.uuid4()),
        cart_id=cart.id,
        order_number=secrets.token_hex(5).upper(),
        payment_state=payment_state.value,
        currency_code=cart.currency_code,
        total=cart.total_price.cent_amount,
        shipping_amount=cart.shipping_amount,
        tax_amount=cart.tax_amount,
        line_items=[
            {"id": i.id, "sku": i.sku, "name": i.name, "quantity": i.quantity, "unit_price": i.unit_price.cent_amount}
            for i in cart.line_items
        ],
        customer_email=cart.customer_email,
        shipping_address=shipping,
        billing_address=cart_row.billing_address,
    )
    cart_row.state = CartState.ORDERED.value
    session.add(row)
    session.flush()
    return row


def _sync_order_payment_state(session: Session, cart_id: str) -> None:
    """Make the cart's order (if any) show the payment state its transactions imply."""
    order = session.execute(_ORDER_OF_CART, {"cart_id": cart_id}).first()
    if order is None:
        return
    rows = session.scalars(_payments_of(cart_id).execution_options(populate_existing=True))
    state = order_payment_state(_payment(p) for p in rows).value
    if order.payment_state != state:
        session.execute(update(OrderRow).where(OrderRow.id == order.id).values(
            payment_state=state, version=OrderRow.version + 1))


# -- row → domain ---------------------------------------------------------------


def _payments_of(cart_id: str) -> Select[tuple[PaymentRow]]:
    return select(PaymentRow).where(PaymentRow.cart_id == cart_id).order_by(PaymentRow.created_at, PaymentRow.id)


def _payment_ids(session: Session, cart_id: str) -> list[str]:
    query = select(PaymentRow.id).where(PaymentRow.cart_id == cart_id).order_by(PaymentRow.created_at)
    return list(session.scalars(query))


def _address(data: dict[str, Any] | None) -> Address | None:
    return None if data is None else Address(**data)


def _cart(row: CartRow) -> Cart:
    digits = iso_fraction_digits(row.currency_code)
    return Cart(
        id=row.id,
        version=row.version,
        currency_code=row.currency_code,
        line_items=tuple(
            LineItem(i.id, i.sku, i.name, i.quantity, Money(i.unit_price, row.currency_code, digits))
            for i in row.line_items
        ),
        shipping_amount=row.shipping_amount,
        tax_amount=row.tax_amount,
        state=CartState(row.state),
        customer_id=row.customer_id,
        customer_email=row.customer_email,
        shipping_address=_address(row.shipping_address),
        billing_address=_address(row.billing_address),
        shipping_method_name=row.shipping_method_name,
        country=row.country,
        store_key=row.store_key,
        tax_calculation_references=tuple(row.tax_calculation_references or ()),
    )


def _references(references: Iterable[str]) -> list[str] | None:
    """Stripe Tax calculation ids as stored (``None`` for none)."""
    found = [str(reference) for reference in references if reference]
    return found or None


def _customer(row: CustomerRow) -> Customer:
    return Customer(row.id, row.email, row.name, row.stripe_customer_id)


def _saved_method(row: SavedPaymentMethodRow) -> SavedPaymentMethod:
    return SavedPaymentMethod(
        id=row.id,
        customer_id=row.customer_id,
        stripe_payment_method_id=row.stripe_payment_method_id,
        brand=row.brand,
        last4=row.last4,
        exp_month=row.exp_month,
        exp_year=row.exp_year,
        created_at=row.created_at,
    )


def _transaction_row(draft: TransactionDraft, seq: int) -> TransactionRow:
    return TransactionRow(
        id=str(uuid.uuid4()),
        seq=seq,
        type=draft.type.value,
        state=draft.state.value,
        amount=draft.amount.cent_amount,
        currency_code=draft.amount.currency_code,
        fraction_digits=draft.amount.fraction_digits,
        interaction_id=draft.interaction_id,
        timestamp=utcnow(),
    )


def _transaction(row: TransactionRow) -> Transaction:
    return Transaction(
        id=row.id,
        type=TransactionType(row.type),
        state=TransactionState(row.state),
        amount=Money(row.amount, row.currency_code, row.fraction_digits),
        interaction_id=row.interaction_id,
        timestamp=row.timestamp,
    )


def _payment(row: PaymentRow) -> Payment:
    return Payment(
        id=row.id,
        version=row.version,
        cart_id=row.cart_id,
        amount_planned=Money(row.amount, row.currency_code, row.fraction_digits),
        payment_interface=row.payment_interface,
        interface_id=row.interface_id,
        method=row.method,
        transactions=tuple(_transaction(t) for t in row.transactions),
        client_secret=row.client_secret,
        created_at=row.created_at,
        intent_variant=row.intent_variant or "",
        cart_fingerprint=row.cart_fingerprint or "",
        cart_version=row.cart_version or 0,
        stale_reason=StaleReason(row.stale_reason) if row.stale_reason else None,
    )


def _order(row: OrderRow, payment_ids: list[str]) -> Order:
    digits = iso_fraction_digits(row.currency_code)
    return Order(
        id=row.id,
        version=row.version,
        cart_id=row.cart_id,
        order_number=row.order_number,
        currency_code=row.currency_code,
        line_items=tuple(
            LineItem(i["id"], i["sku"], i["name"], i["quantity"], Money(i["unit_price"], row.currency_code, digits))
            for i in row.line_items
        ),
        total_price=Money(row.total, row.currency_code, digits),
        shipping_amount=row.shipping_amount,
        tax_amount=row.tax_amount,
        payment_state=row.payment_state,
        customer_email=row.customer_email,
        shipping_address=_address(row.shipping_address),
        billing_address=_address(row.billing_address),
        payment_ids=tuple(payment_ids),
        created_at=row.created_at,
    )
