"""Orders: a cart becomes one exactly once, and its payment state follows its payments.

Placing an order is on the webhook's hot path, so it runs on the transaction's bare
connection with prebuilt Core statements: the cart is read under its row lock, then its
line items (with its order, if any) and its payments in one statement each, all three in
one round trip on PostgreSQL.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Insert, Select, bindparam, literal, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from flask_psp_connector.domain.model import Address, Cart, CartState, Order
from flask_psp_connector.domain.payment import Payment
from flask_psp_connector.domain.settle import OrderPaymentState, order_payment_state
from flask_psp_connector.errors import ResourceNotFound
from flask_psp_connector.platforms.embedded import rows
from flask_psp_connector.platforms.embedded.database import Database
from flask_psp_connector.platforms.embedded.pipeline import fetch_together
from flask_psp_connector.platforms.embedded.schema import (
    CartRow,
    LineItemRow,
    OrderRow,
    PaymentRow,
    TransactionRow,
    table_of,
    utcnow,
)

_carts = table_of(CartRow)
_line_items = table_of(LineItemRow)
_orders = table_of(OrderRow)
_payments = table_of(PaymentRow)
_transactions = table_of(TransactionRow)
_ORDER_OF_CART = select(_orders.c.id, _orders.c.payment_state).where(_orders.c.cart_id == bindparam("cart_id"))


def _cart_reads(cart_id: ColumnElement[Any]) -> list[Select[Any]]:
    """A settlement's statements on PostgreSQL: the cart's row lock, then its line items
    with its order (an outer join: one row for a cart without line items), and its payments
    with their transactions. The reads are statements of their own, after the lock: under
    READ COMMITTED a statement that waited for a row lock sees the rows of its other tables
    as they were before the wait."""
    return [
        select(_carts).where(_carts.c.id == cart_id).with_for_update(),
        select(select(_orders.c.id).where(_orders.c.cart_id == cart_id).scalar_subquery().label("order_id"),
               *_line_items.c)
        .select_from(_carts)
        .outerjoin(_line_items, _line_items.c.cart_id == _carts.c.id)
        .where(_carts.c.id == cart_id)
        .order_by(_line_items.c.position),
        select(_payments, *rows.TRANSACTION_COLUMNS)
        .outerjoin(_transactions, _transactions.c.payment_id == _payments.c.id)
        .where(_payments.c.cart_id == cart_id)
        .order_by(_payments.c.created_at, _payments.c.id, _transactions.c.seq),
    ]


_CART_READS = _cart_reads(bindparam("cart_id"))
_LOCK_CART, _LINE_ITEMS_AND_ORDER, _PAYMENTS_OF_CART = _CART_READS
#: :func:`_cart_reads` for the cart of the payment whose id (0) or PaymentIntent id (1) is ``key``.
CART_READS_BY_PAYMENT = [
    _cart_reads(select(_payments.c.cart_id).where(key == bindparam("key")).scalar_subquery())
    for key in (_payments.c.id, _payments.c.interface_id)
]
# SQLite's write transaction holds the whole database: no lock to wait for, so the cart
# comes with its line items (their columns prefixed) and its order in one statement.
_CART_WITH_LINE_ITEMS = (
    select(
        _carts,
        _ORDER_OF_CART.with_only_columns(_orders.c.id).scalar_subquery().label("order_id"),
        *(column.label(f"l_{column.name}") for column in _line_items.c),
    )
    .outerjoin(_line_items, _line_items.c.cart_id == _carts.c.id)
    .where(_carts.c.id == bindparam("cart_id"))
    .order_by(_line_items.c.position)
)
_MARK_ORDERED = (
    update(_carts)
    .where(_carts.c.id == bindparam("cart_id"), _carts.c.version == bindparam("old_version"))
    .values(state=CartState.ORDERED.value, version=bindparam("new_version"))
    .returning(_carts.c.id)
)
_ORDER_COLUMNS = [column for column in _orders.c if column.name not in ("version", "cart_id")]
_ADD_ORDER = _orders.insert()
# PostgreSQL marks the cart Ordered and adds its order in one statement (one round trip).
# Its parameters are prefixed: one named like a cart column would be SET by the UPDATE.
_MARKED = _MARK_ORDERED.cte("marked")
_MARK_AND_ADD_ORDER = _orders.insert().from_select(
    ["version", "cart_id", *(column.name for column in _ORDER_COLUMNS)],
    select(literal(1), _MARKED.c.id, *(bindparam(f"order_{column.name}", type_=column.type) for column in _ORDER_COLUMNS)),
).returning(_orders.c.id)
_SET_PAYMENT_STATE = (
    update(_orders)
    .where(_orders.c.id == bindparam("order_id"))
    .values(payment_state=bindparam("new_state"), version=_orders.c.version + 1)
)
_ORDER_BY_CART = select(_orders).where(_orders.c.cart_id == bindparam("cart_id"))
_PAYMENT_IDS = select(_payments.c.id).where(_payments.c.cart_id == bindparam("cart_id")).order_by(
    _payments.c.created_at)


@dataclass(frozen=True, slots=True)
class LockedCart:
    """A cart read under its row lock: its row as stored, the cart, and its order's id
    (``None`` while the cart has no order)."""

    row: Any
    cart: Cart
    order_id: str | None


class Orders:
    """Orders of the embedded store."""

    _db: Database

    def create_order(self, cart_id: str) -> Order:
        """Turn the cart into an order exactly once; later calls return that order."""

        def work(connection: Connection) -> Order:
            locked = lock_cart(connection, cart_id)
            if locked.order_id is None:
                new_order(connection, locked, order_values(locked, None, OrderPaymentState.PENDING))
            sync_order_payment_state(connection, cart_id)
            row = connection.execute(_ORDER_BY_CART, {"cart_id": cart_id}).one()
            return rows.order(row, connection.scalars(_PAYMENT_IDS, {"cart_id": cart_id}))

        return self._db.run(work, write=True, core=True)

    def find_order_by_cart(self, cart_id: str) -> Order | None:
        """Return the order the cart became, if any."""

        def read(session: Session) -> Order | None:
            row = session.scalars(select(OrderRow).where(OrderRow.cart_id == cart_id)).first()
            return None if row is None else rows.order(row, payment_ids(session, cart_id))

        return self._db.run(read)

    def list_orders(self, limit: int = 50, offset: int = 0, *, customer_id: str | None = None) -> list[Order]:
        """Return orders, newest first (for back offices); only the customer's with ``customer_id``."""
        query = select(OrderRow).order_by(OrderRow.created_at.desc(), OrderRow.id).limit(limit).offset(offset)
        if customer_id is not None:
            query = query.join(CartRow, CartRow.id == OrderRow.cart_id).where(CartRow.customer_id == customer_id)
        return self._db.run(
            lambda session: [rows.order(row, payment_ids(session, row.cart_id)) for row in session.scalars(query)]
        )


def payment_ids(session: Session, cart_id: str) -> list[str]:
    """The ids of the cart's payments, oldest first."""
    return list(session.scalars(_PAYMENT_IDS, {"cart_id": cart_id}))


def lock_cart(connection: Connection, cart_id: str) -> LockedCart:
    """The cart, read under its row lock, with its line items and its order (if any)."""
    row = connection.execute(_LOCK_CART, {"cart_id": cart_id}).first()
    if row is None:
        raise ResourceNotFound(f"Cart {cart_id} not found.")
    found = connection.execute(_LINE_ITEMS_AND_ORDER, {"cart_id": cart_id}).all()
    cart = rows.cart(row, [item for item in found if item.id is not None])
    return LockedCart(row, cart, found[0].order_id)


def lock_cart_with_payments(connection: Connection, cart_id: str) -> tuple[LockedCart, list[Payment]]:
    """:func:`lock_cart` and :func:`cart_payments`: what a settlement decides on, in one
    round trip on PostgreSQL (the reads are sent after the lock, and run once it is held),
    in two statements on SQLite."""
    values = {"cart_id": cart_id}
    if connection.dialect.name != "postgresql":
        found, payments = fetch_together(connection, [(_CART_WITH_LINE_ITEMS, values), (_PAYMENTS_OF_CART, values)])
        if not found:
            raise ResourceNotFound(f"Cart {cart_id} not found.")
        cart = rows.cart(found[0], [item for item in found if item.l_id is not None], prefix="l_")
        return LockedCart(found[0], cart, found[0].order_id), rows.payments(payments)
    return locked_cart(fetch_together(connection, [(statement, values) for statement in _CART_READS]))


def locked_cart(found: Sequence[Sequence[Any]]) -> tuple[LockedCart, list[Payment]]:
    """The cart and its payments from the rows of :func:`_cart_reads` (PostgreSQL)."""
    row, lines, payments = found
    if not row:
        raise ResourceNotFound("The payment's cart was not found.")
    cart = rows.cart(row[0], [item for item in lines if item.id is not None])
    return LockedCart(row[0], cart, lines[0].order_id), rows.payments(payments)


def cart_payments(connection: Connection, cart_id: str) -> list[Payment]:
    """The cart's payments with their transactions, oldest first."""
    return rows.payments(connection.execute(_PAYMENTS_OF_CART, {"cart_id": cart_id}))


def order_values(locked: LockedCart, ship_to: Callable[[], Address | None] | None,
                 payment_state: OrderPaymentState) -> dict[str, Any]:
    """The new order of a cart locked and found without one (its address asked of
    ``ship_to`` when the cart has none)."""
    cart, row = locked.cart, locked.row
    shipping = row.shipping_address
    if shipping is None and ship_to is not None:
        found = ship_to()
        shipping = asdict(found) if found else None
    return {
        "id": str(uuid.uuid4()),
        "order_number": secrets.token_hex(5).upper(),
        "payment_state": payment_state.value,
        "currency_code": cart.currency_code,
        "total": cart.total_price.cent_amount,
        "shipping_amount": cart.shipping_amount,
        "tax_amount": cart.tax_amount,
        "line_items": [
            {"id": i.id, "sku": i.sku, "name": i.name, "quantity": i.quantity, "unit_price": i.unit_price.cent_amount}
            for i in cart.line_items
        ],
        "customer_email": cart.customer_email,
        "shipping_address": shipping,
        "billing_address": row.billing_address,
        "created_at": utcnow(),
    }


def place_order_work(locked: LockedCart, order: dict[str, Any]) -> tuple[Insert, dict[str, Any]]:
    """PostgreSQL's statement marking the cart Ordered and adding ``order`` (one row returned
    when placed), with its values: to be sent with other statements (see :mod:`.pipeline`)."""
    cart = locked.cart
    marking = {"cart_id": cart.id, "old_version": cart.version, "new_version": cart.version + 1}
    return _MARK_AND_ADD_ORDER, {**{f"order_{name}": value for name, value in order.items()}, **marking}


def new_order(connection: Connection, locked: LockedCart, order: dict[str, Any]) -> None:
    """Place ``order`` (:func:`order_values`) for its locked cart; the cart becomes Ordered."""
    cart = locked.cart
    if connection.dialect.name == "postgresql":
        statement, values = place_order_work(locked, order)
        placed = len(connection.execute(statement, values).all())
    else:
        (marked,) = fetch_together(connection, [(_MARK_ORDERED, {
            "cart_id": cart.id, "old_version": cart.version, "new_version": cart.version + 1})])
        placed = len(marked)
        if placed == 1:
            fetch_together(connection, [(_ADD_ORDER, {**order, "version": 1, "cart_id": cart.id})])
    if placed != 1:
        raise StaleDataError(f"Cart {cart.id} changed under its lock.")


def sync_order_payment_state(connection: Connection, cart_id: str) -> None:
    """Make the cart's order (if any) show the payment state its transactions imply (the
    order and the payments are read in one round trip on PostgreSQL)."""
    values = {"cart_id": cart_id}
    order, payments = fetch_together(connection, [(_ORDER_OF_CART, values), (_PAYMENTS_OF_CART, values)])
    if not order:
        return
    state = order_payment_state(rows.payments(payments)).value
    if order[0].payment_state != state:
        fetch_together(connection, [(_SET_PAYMENT_STATE, {"order_id": order[0].id, "new_state": state})])
