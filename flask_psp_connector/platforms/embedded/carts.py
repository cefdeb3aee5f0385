"""Carts and the checkout sessions opened on them."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, Row, Table, bindparam, literal_column, null, select, type_coerce, union_all
from sqlalchemy.orm import Session

from flask_psp_connector.domain.model import Address, Cart, CartState, CheckoutSession
from flask_psp_connector.domain.money import Money
from flask_psp_connector.errors import ConcurrentModification, InvalidOperation, ResourceNotFound
from flask_psp_connector.platforms.embedded import rows
from flask_psp_connector.platforms.embedded.database import Database
from flask_psp_connector.platforms.embedded.orders import cart_payments
from flask_psp_connector.platforms.embedded.schema import (
    CartRow,
    LineItemRow,
    PaymentRow,
    SessionRow,
    TransactionRow,
    hash_secret,
    table_of,
    utcnow,
)
from flask_psp_connector.ports import CartRead, Checkout

_UNSET: Any = object()


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


_carts = table_of(CartRow)
_line_items = table_of(LineItemRow)
_sessions = table_of(SessionRow)
_payments = table_of(PaymentRow)
_transactions = table_of(TransactionRow)
# The checkout's reads, prebuilt on the tables (no ORM session: they run on every request).
_LINE_ITEM_FIELDS = ("id", "sku", "name", "quantity", "unit_price")
# One row per line item (one for a cart without any), the cart's columns on each.
_CART_AND_LINES = (
    select(_carts, *(_line_items.c[name].label(f"li_{name}") for name in _LINE_ITEM_FIELDS))
    .outerjoin(_line_items, _line_items.c.cart_id == _carts.c.id)
    .where(_carts.c.id == bindparam("cart_id"))
    .order_by(_line_items.c.position)
)
_SESSION = select(_sessions).where(_sessions.c.id_hash == bindparam("id_hash"))
_SESSION_FIELDS = ("cart_id", "merchant_return_url", "allowed_payment_methods", "expires_at")


def _columns(table: Table, prefix: str, names: Iterable[str] | None = None) -> list[Any]:
    return [table.c[name].label(prefix + name) for name in (names or table.c.keys())]


def _nulls(columns: Iterable[Any]) -> list[Any]:
    # Typed, so that the rows of the other part are read as these columns' types.
    return [type_coerce(null(), column.type).label(column.name) for column in columns]


# A checkout in one statement (one snapshot): the session with its cart, one row per line
# item (one for a cart without any), then the cart's payments with their transactions,
# as rows.payments reads them. The parts share one column list, each empty in the other.
_CHECKOUT_SESSION_PART = [*_columns(_sessions, "s_", _SESSION_FIELDS), *_columns(_carts, "c_"),
                          *_columns(_line_items, "li_", (*_LINE_ITEM_FIELDS, "position"))]
_CHECKOUT_PAYMENT_PART = [*_payments.c, *rows.TRANSACTION_COLUMNS]
_CHECKOUT_PARTS = union_all(
    select(literal_column("0").label("part"), *_CHECKOUT_SESSION_PART, *_nulls(_CHECKOUT_PAYMENT_PART))
    .select_from(_sessions)
    .outerjoin(_carts, _carts.c.id == _sessions.c.cart_id)
    .outerjoin(_line_items, _line_items.c.cart_id == _carts.c.id)
    .where(_sessions.c.id_hash == bindparam("id_hash")),
    select(literal_column("1"), *_nulls(_CHECKOUT_SESSION_PART), *_CHECKOUT_PAYMENT_PART)
    .outerjoin(_transactions, _transactions.c.payment_id == _payments.c.id)
    .where(_payments.c.cart_id == select(_sessions.c.cart_id).where(_sessions.c.id_hash == bindparam("id_hash"))
           .scalar_subquery()),
)
_CHECKOUT = _CHECKOUT_PARTS.order_by(*(_CHECKOUT_PARTS.selected_columns[name] for name in (
    "part", "li_position", "created_at", "id", "t_seq")))


class _Prefixed:
    """A row whose columns are named ``prefix + name``, read by ``name``."""

    __slots__ = ("_prefix", "_row")

    def __init__(self, row: Row[Any], prefix: str) -> None:
        self._row, self._prefix = row, prefix

    def __getattr__(self, name: str) -> Any:
        return getattr(self._row, self._prefix + name)


def read_cart(connection: Connection, cart_id: str) -> Cart:
    """The cart with its line items, or :class:`ResourceNotFound`."""
    return _cart_of(connection.execute(_CART_AND_LINES, {"cart_id": cart_id}).all(), cart_id)


def _cart_of(found: Sequence[Row[Any]], cart_id: str, prefix: str = "") -> Cart:
    """The cart in rows of :data:`_CART_AND_LINES`' columns (the cart's named ``prefix +
    column``), or :class:`ResourceNotFound`."""
    head: Any = _Prefixed(found[0], prefix) if found and prefix else found[0] if found else None
    if head is None or head.id is None:
        raise ResourceNotFound(f"Cart {cart_id} not found.")
    return rows.cart(head, [r for r in found if r.li_id is not None], prefix="li_")


def _session_of(session_id: str, row: Row[Any] | None, prefix: str = "") -> CheckoutSession | None:
    """The session in ``row`` (columns named ``prefix + column``), unless it is missing or expired."""
    if row is None:
        return None
    cart_id, return_url, methods, expires_at = (getattr(row, prefix + name) for name in _SESSION_FIELDS)
    if expires_at <= utcnow():
        return None
    return CheckoutSession(session_id, cart_id, return_url, tuple(methods), expires_at)


def cart_row(session: Session, cart_id: str, *, lock: bool = False) -> CartRow:
    """The cart's row (under its row lock with ``lock``), or :class:`ResourceNotFound`."""
    row = session.get(CartRow, cart_id, with_for_update=lock)
    if row is None:
        raise ResourceNotFound(f"Cart {cart_id} not found.")
    return row


class Carts:
    """Carts and checkout sessions of the embedded store."""

    _db: Database
    session_ttl: int

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
            tax_calculation_references=rows.references(tax_calculation_references),
        )
        _assign(row, list(line_items), shipping_address, billing_address, shipping_amount, tax_amount)

        def work(session: Session) -> Cart:
            session.add(row)
            session.flush()
            return rows.cart(row)

        return self._db.run(work, write=True)

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
            row = cart_row(session, cart_id, lock=True)
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
                row.tax_calculation_references = rows.references(tax_calculation_references)
            _assign(
                row,
                items,
                row.shipping_address if shipping_address is _UNSET else shipping_address,
                row.billing_address if billing_address is _UNSET else billing_address,
                row.shipping_amount if shipping_amount is None else shipping_amount,
                row.tax_amount if tax_amount is None else tax_amount,
            )
            session.flush()
            return rows.cart(row)

        return self._db.run(work, write=True)

    def get_cart(self, cart_id: str) -> Cart:
        """Return the cart or raise :class:`ResourceNotFound`."""
        return self._db.run(lambda connection: read_cart(connection, cart_id), core=True)

    def get_cart_and_payments(self, cart_id: str) -> CartRead:
        """The cart and its payments (oldest first) from one transaction."""
        return self._db.run(
            lambda connection: CartRead(read_cart(connection, cart_id), cart_payments(connection, cart_id)), core=True)

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

        return self._db.run(work, write=True)

    def get_session(self, session_id: str) -> CheckoutSession | None:
        """Return the unexpired session with this id, else ``None``."""
        return self._db.run(
            lambda connection: _session_of(session_id, connection.execute(
                _SESSION, {"id_hash": hash_secret(session_id)}).first()), core=True)

    def get_checkout(self, session_id: str) -> Checkout | None:
        """The unexpired session with this id, its cart and the cart's payments (oldest
        first), from one statement."""

        def read(connection: Connection) -> Checkout | None:
            found = connection.execute(_CHECKOUT, {"id_hash": hash_secret(session_id)}).all()
            session = _session_of(session_id, found[0] if found else None, "s_")
            if session is None:
                return None
            cart = _cart_of([row for row in found if row.part == 0], session.cart_id, "c_")
            return Checkout(session, cart, tuple(rows.payments(row for row in found if row.part == 1)))

        return self._db.run(read, core=True)


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
