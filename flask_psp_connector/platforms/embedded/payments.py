"""Payments and the webhook hot path.

An event's effects and its inbox row are written in one transaction, under the
payment's row lock, with prebuilt Core statements: SQLAlchemy compiles each once, not
for every event, and no ORM session is opened. Settling a payment takes its cart's row
lock too (after the payment's) and places the order in the same transaction.

On PostgreSQL an event's first round trip locks its payment, reads it and records the
event in the inbox (see :mod:`.pipeline`); for an event that settles the payment, it also
locks the cart after the payment and reads what the settlement decides on. The second
writes the payment (decided in memory, see :mod:`.payment_writes`), and places the order
when there is one to place; then the commit. On SQLite, whose write transaction holds the
whole database, the payment is read without a lock statement.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from flask_psp_connector.domain.inbox import EventReceipt, EventStatus
from flask_psp_connector.domain.payment import Payment, TransactionDraft
from flask_psp_connector.domain.settle import PaymentChanges, order_payment_state, settle
from flask_psp_connector.errors import ResourceNotFound
from flask_psp_connector.platforms.embedded import payment_creation as creation
from flask_psp_connector.platforms.embedded import rows
from flask_psp_connector.platforms.embedded.database import Database
from flask_psp_connector.platforms.embedded.orders import (
    CART_READS_BY_PAYMENT,
    LockedCart,
    cart_payments,
    lock_cart_with_payments,
    locked_cart,
    new_order,
    order_values,
    place_order_work,
    sync_order_payment_state,
)
from flask_psp_connector.platforms.embedded.payment_writes import applied, store, stored, write_work
from flask_psp_connector.platforms.embedded.pipeline import fetch_together
from flask_psp_connector.platforms.embedded.schema import (
    CartRow,
    OrderRow,
    PaymentRow,
    StripeEventRow,
    TransactionRow,
    table_of,
    utcnow,
)
from flask_psp_connector.ports import CartRead, PaymentDraft, PaymentRef

_carts = table_of(CartRow)
_payments = table_of(PaymentRow)
_transactions = table_of(TransactionRow)
_events = table_of(StripeEventRow)
_orders = table_of(OrderRow)
_PAYMENT_KEYS = (_payments.c.id, _payments.c.interface_id)
_PAYMENT_ID_BY = [select(_payments.c.id).where(key == bindparam("key")) for key in _PAYMENT_KEYS]
_LOCK_PAYMENT_BY = [statement.with_for_update() for statement in _PAYMENT_ID_BY]
# The payment, its transactions and whether its cart has an order, in one round trip. It is
# read after the lock is held, in a statement of its own: under READ COMMITTED a statement
# that waited for a row lock sees the rows of its other tables as they were before the wait.
_PAYMENT_AND_TRANSACTIONS = (
    select(
        _payments,
        select(_orders.c.id).where(_orders.c.cart_id == _payments.c.cart_id).scalar_subquery().label("order_id"),
        *rows.TRANSACTION_COLUMNS,
    )
    .outerjoin(_transactions, _transactions.c.payment_id == _payments.c.id)
    .order_by(_transactions.c.seq)
)
_PAYMENT_WITH_TRANSACTIONS = _PAYMENT_AND_TRANSACTIONS.where(_payments.c.id == bindparam("payment_id"))
_PAYMENT_WITH_TRANSACTIONS_BY = [_PAYMENT_AND_TRANSACTIONS.where(key == bindparam("key")) for key in _PAYMENT_KEYS]
_RECORD_EVENT = {
    dialect: insert_for(_events).on_conflict_do_nothing().returning(_events.c.id)
    for dialect, insert_for in (("sqlite", sqlite_insert), ("postgresql", postgresql_insert))
}
# PostgreSQL records the event in the statement that reads its payment (sent with the
# payment's lock, see _locked_and_recorded): the inbox row is inserted only if the event id
# is new and the payment exists; ``recorded`` says whether it was. One per payment key.
_RECORD_AND_READ: list[Select[Any]] = []
for _key in _PAYMENT_KEYS:
    _recorded = (
        postgresql_insert(_events)
        .from_select(
            ["id", "type", "status", "payment_id", "detail", "received_at"],
            select(bindparam("event_id", type_=_events.c.id.type), bindparam("event_type", type_=_events.c.type.type),
                   bindparam("event_status", type_=_events.c.status.type), _payments.c.id,
                   bindparam("event_detail", type_=_events.c.detail.type),
                   bindparam("received_at", type_=_events.c.received_at.type))
            .where(_key == bindparam("key")),
        )
        .on_conflict_do_nothing()
        .returning(_events.c.id)
        .cte("recorded")
    )
    _RECORD_AND_READ.append(
        _PAYMENT_WITH_TRANSACTIONS_BY[len(_RECORD_AND_READ)]
        .add_columns(select(func.count()).select_from(_recorded).scalar_subquery().label("recorded"))
    )
_REPLAY_EVENT = update(_events).where(_events.c.id == bindparam("event_id")).values(
    status=bindparam("new_status"), payment_id=bindparam("new_payment_id"), detail=bindparam("new_detail"))
_EVENT_BY_ID = select(_events.c.payment_id, _events.c.detail).where(_events.c.id == bindparam("event_id"))


class Payments:
    """Payments of the embedded store, and the Stripe events applied to them."""

    _db: Database

    def get_payment(self, payment_id: str) -> Payment:
        """Return the payment or raise :class:`ResourceNotFound`."""
        found = self._db.run(lambda connection: _payment_with_id(connection, payment_id), core=True)
        if found is None:
            raise ResourceNotFound(f"Payment {payment_id} not found.")
        return found

    def payments_of_cart(self, cart_id: str) -> list[Payment]:
        """Return the cart's payments, oldest first."""
        return self._db.run(lambda connection: cart_payments(connection, cart_id), core=True)

    def list_payments(self, *, limit: int = 50, offset: int = 0) -> list[Payment]:
        """Return payments, newest first (for back offices)."""
        query = select(PaymentRow).order_by(PaymentRow.created_at.desc()).limit(limit).offset(offset)
        return self._db.run(lambda session: [rows.payment_of(row) for row in session.scalars(query)])

    def create_payment(self, draft: PaymentDraft) -> Payment:
        """Create the payment on its cart in one transaction; an existing id is returned as is."""
        values, transactions = creation.new_rows(draft, utcnow())

        def work(connection: Connection) -> Payment:
            if not creation.insert_new(connection, values, transactions):
                existing = _payment_with_id(connection, draft.id)
                assert existing is not None  # its id was taken in this transaction's view
                return existing
            # What was written is what would be read back: no statement to read it.
            return creation.as_written(values, transactions)

        try:
            return self._db.run(work, write=True, core=True)
        except IntegrityError:
            # The cart's foreign key refused the payment, or another constraint did.
            def explain(connection: Connection) -> Payment | None:
                if not creation.cart_exists(connection, draft.cart_id):
                    raise ResourceNotFound(f"Cart {draft.cart_id} not found.")
                return _payment_with_id(connection, draft.id)

            winner = self._db.run(explain, core=True, name="create_payment")
            if winner is None:
                raise
            return winner

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

    def apply_changes(self, payment_id: str, changes: PaymentChanges, *, cart_id: str | None = None,
                      read: CartRead | None = None) -> Payment:
        """Record ``changes`` under the payment's row lock; settle it with ``create_order``
        (under the cart's row lock too, taken after the payment's). ``cart_id`` and
        ``read`` are not needed here: the payment is found by its key and read locked."""

        return self.apply_plan(payment_id, lambda _: changes)

    def apply_plan(self, payment_id: str, plan: Callable[[Payment], PaymentChanges], *,
                   cart_id: str | None = None, read: CartRead | None = None) -> Payment:
        """:meth:`apply_changes` with the changes ``plan`` decides from the locked payment."""

        def work(connection: Connection) -> Payment:
            locked = _locked_payment(connection, PaymentRef(payment_id, None))
            if locked is None:
                raise ResourceNotFound(f"Payment {payment_id} not found.")
            return _change(connection, locked, plan(locked.payment))

        return self._db.run(work, write=True, core=True)

    def process_event(
        self,
        event_id: str,
        event_type: str,
        payment: PaymentRef | None,
        plan: Callable[[Payment], PaymentChanges],
        *,
        detail: str = "",
        replay: bool = False,
        settles: bool = False,
    ) -> EventReceipt:
        """Apply a Stripe event's effects and record it in the inbox, in one transaction.

        ``plan`` decides the changes from the payment's state under its row lock. An
        event id already in the inbox changes nothing (unless ``replay``); without a
        payment the event is recorded as ignored.
        """

        def work(connection: Connection) -> EventReceipt:
            locked: _LockedPayment | None = None
            if payment is not None and not replay:
                for index, key in enumerate((payment.payment_id, payment.interface_id)):
                    found = _locked_and_recorded(connection, index, key, event_id, event_type, detail[:512],
                                                 settles=settles) if key else None
                    if found is None:
                        continue
                    locked, recorded = found
                    if not recorded:
                        inbox = connection.execute(_EVENT_BY_ID, {"event_id": event_id}).one()
                        return EventReceipt(EventStatus.DUPLICATE, inbox.payment_id, inbox.detail)
                    _change(connection, locked, plan(locked.payment))
                    return EventReceipt(EventStatus.PROCESSED, locked.payment.id, detail[:512])
            elif payment is not None:
                locked = _locked_payment(connection, payment)
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

        return self._db.run(work, write=True, core=True)

    def resolve_payment_id(self, ref: PaymentRef) -> str | None:
        """Our payment's id, by its id if it exists, else by its PaymentIntent id."""
        return self._db.run(lambda connection: _payment_id(connection, ref, _PAYMENT_ID_BY), core=True)


def _payment_with_id(connection: Connection, payment_id: str) -> Payment | None:
    found = connection.execute(_PAYMENT_WITH_TRANSACTIONS, {"payment_id": payment_id}).all()
    return rows.payments(found)[0] if found else None


@dataclass(frozen=True, slots=True)
class _LockedPayment:
    payment: Payment
    has_order: bool
    #: The payment's cart, locked after it, and the cart's payments, when read with it.
    cart: tuple[LockedCart, list[Payment]] | None = None


def _locked_payment(connection: Connection, ref: PaymentRef) -> _LockedPayment | None:
    """The payment ``ref`` names, read under its row lock, or ``None``."""
    payment_id = _payment_id(connection, ref, _LOCK_PAYMENT_BY)
    if payment_id is None:
        return None
    found = connection.execute(_PAYMENT_WITH_TRANSACTIONS, {"payment_id": payment_id}).all()
    return _LockedPayment(rows.payments(found)[0], found[0].order_id is not None)


def _locked_and_recorded(connection: Connection, key_index: int, key: str, event_id: str, event_type: str,
                         detail: str, *, settles: bool) -> tuple[_LockedPayment, bool] | None:
    """The payment whose key (:data:`_PAYMENT_KEYS`) is ``key``, read under its row lock, and
    whether the event was recorded for it in the inbox now (False: it was there already);
    ``None`` when there is no such payment (nothing recorded). On PostgreSQL, one round trip,
    which also locks and reads the payment's cart when the event ``settles``."""
    if connection.dialect.name != "postgresql":
        # SQLite's write transaction holds the whole database: there is no row lock to take.
        (found,) = fetch_together(connection, [(_PAYMENT_WITH_TRANSACTIONS_BY[key_index], {"key": key})])
        if not found:
            return None
        inbox = {"id": event_id, "type": event_type, "status": EventStatus.PROCESSED.value, "payment_id": found[0].id,
                 "detail": detail, "received_at": utcnow()}
        (recorded,) = fetch_together(connection, [(_RECORD_EVENT["sqlite"], inbox)])
        return _LockedPayment(rows.payments(found)[0], found[0].order_id is not None), bool(recorded)
    values = {"event_id": event_id, "event_type": event_type, "event_status": EventStatus.PROCESSED.value,
              "event_detail": detail, "received_at": utcnow(), "key": key}
    cart_reads = CART_READS_BY_PAYMENT[key_index] if settles else []
    # The locks first, the payment's before its cart's; then the reads, each seeing what
    # the locks' previous holders committed.
    lock, *rest = fetch_together(connection, [
        (_LOCK_PAYMENT_BY[key_index], {"key": key}), *((statement, {"key": key}) for statement in cart_reads[:1]),
        (_RECORD_AND_READ[key_index], values), *((statement, {"key": key}) for statement in cart_reads[1:])])
    found = rest[len(cart_reads[:1])]
    if not found:
        return None
    if not lock:  # created between the two statements: its row was not locked
        raise StaleDataError(f"Payment {key} appeared while it was being locked.")
    cart = locked_cart([rest[0], *rest[2:]]) if settles else None
    return _LockedPayment(rows.payments(found)[0], found[0].order_id is not None, cart), found[0].recorded == 1


def _payment_id(connection: Connection, ref: PaymentRef, statements: list[Select[Any]]) -> str | None:
    """The id of the payment ``ref`` names: by its id first, then by its PaymentIntent id."""
    for statement, key in zip(statements, (ref.payment_id, ref.interface_id), strict=True):
        found = connection.scalar(statement, {"key": key}) if key else None
        if found is not None:
            return str(found)
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
    return store(connection, payment, applied(payment, changes))


def _change(connection: Connection, locked: _LockedPayment, changes: PaymentChanges) -> Payment:
    """Record ``changes`` on a locked payment, settle it if asked, and keep its order's state in step."""
    if changes.create_order:
        return _settle(connection, locked.payment, applied(locked.payment, changes), changes, locked.cart)
    payment = _apply(connection, locked.payment, changes)
    if locked.has_order:
        sync_order_payment_state(connection, payment.cart_id)
    return payment


def _settle(connection: Connection, before: Payment, payment: Payment, changes: PaymentChanges,
            cart: tuple[LockedCart, list[Payment]] | None) -> Payment:
    """Place the cart's order if ``payment`` (``before`` with ``changes``, not written yet)
    pays for it as it is now; else mark it stale and undo it. Then write the payment.

    The cart's row lock serializes the settlements of its payments, so of two payments
    racing for one cart state exactly one is kept. An order placed now gets the payment
    state its payments, read under that lock, imply: it needs no second look. On
    PostgreSQL the payment and the order are written in one round trip.
    """
    locked, cart_payments_read = cart or lock_cart_with_payments(connection, payment.cart_id)
    payments = [payment if found.id == payment.id else found for found in cart_payments_read]
    verdict = settle(payment, locked.cart, payments, ordered=locked.order_id is not None)
    if verdict.place_order:
        order = order_values(locked, changes.ship_to, order_payment_state(payments))
        work = write_work(connection.dialect.name, before, payment)
        if connection.dialect.name != "postgresql" or work is None:
            payment = store(connection, before, payment)
            new_order(connection, locked, order)
            return payment
        bumped, placed = fetch_together(connection, [work, place_order_work(locked, order)])
        if len(placed) != 1:
            raise StaleDataError(f"Cart {locked.cart.id} changed under its lock.")
        return stored(before, payment, len(bumped))
    if verdict.stale is not None:
        undo = changes.on_stale(payment, verdict.stale) if changes.on_stale else ()
        payment = applied(payment, PaymentChanges(undo, stale_reason=verdict.stale))
    payment = store(connection, before, payment)
    if locked.order_id is not None:
        sync_order_payment_state(connection, payment.cart_id)
    return payment
