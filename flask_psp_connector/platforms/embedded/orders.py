"""Orders: a cart becomes one exactly once, and its payment state follows its payments."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from dataclasses import asdict

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from flask_psp_connector.domain.model import Address, CartState, Order
from flask_psp_connector.domain.settle import OrderPaymentState, order_payment_state
from flask_psp_connector.platforms.embedded import rows
from flask_psp_connector.platforms.embedded.carts import cart_row, payments_of
from flask_psp_connector.platforms.embedded.database import Database
from flask_psp_connector.platforms.embedded.schema import CartRow, OrderRow, PaymentRow, table_of

_orders = table_of(OrderRow)
_ORDER_OF_CART = select(_orders.c.id, _orders.c.payment_state).where(_orders.c.cart_id == bindparam("cart_id"))


class Orders:
    """Orders of the embedded store."""

    _db: Database

    def create_order(self, cart_id: str) -> Order:
        """Turn the cart into an order exactly once; later calls return that order."""

        def work(session: Session) -> Order:
            row = order_for_cart(session, cart_id, None)
            sync_order_payment_state(session, cart_id)
            return rows.order(row, payment_ids(session, cart_id))

        return self._db.run(work, write=True)

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
    query = select(PaymentRow.id).where(PaymentRow.cart_id == cart_id).order_by(PaymentRow.created_at)
    return list(session.scalars(query))


def order_for_cart(session: Session, cart_id: str, ship_to: Callable[[], Address | None] | None) -> OrderRow:
    """The cart's order, created (and the cart marked Ordered) if it has none yet; it
    ships to the cart's address, else to what ``ship_to`` finds."""
    locked = cart_row(session, cart_id, lock=True)
    existing = session.scalars(select(OrderRow).where(OrderRow.cart_id == cart_id)).first()
    if existing is not None:
        return existing
    return new_order(session, locked, ship_to, OrderPaymentState.PENDING)


def new_order(session: Session, locked: CartRow, ship_to: Callable[[], Address | None] | None,
              payment_state: OrderPaymentState) -> OrderRow:
    """The order of a cart locked and found without one; the cart becomes Ordered."""
    cart = rows.cart(locked)
    shipping = locked.shipping_address
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
        billing_address=locked.billing_address,
    )
    locked.state = CartState.ORDERED.value
    session.add(row)
    session.flush()
    return row


def sync_order_payment_state(session: Session, cart_id: str) -> None:
    """Make the cart's order (if any) show the payment state its transactions imply."""
    order = session.execute(_ORDER_OF_CART, {"cart_id": cart_id}).first()
    if order is None:
        return
    found = session.scalars(payments_of(cart_id).execution_options(populate_existing=True))
    state = order_payment_state(rows.payment_of(p) for p in found).value
    if order.payment_state != state:
        session.execute(update(OrderRow).where(OrderRow.id == order.id).values(
            payment_state=state, version=OrderRow.version + 1))
