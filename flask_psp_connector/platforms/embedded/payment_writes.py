"""A payment's changes, decided in memory and then written: the webhook's writes.

A change is recorded on the payment as read under its row lock (:func:`applied`), and
what differs is written in one go (:func:`store`) and checked against the version read:
a settlement can thus decide on the payment as it will be, and write it together with the
order it places (see ``payments``).
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection, Update, bindparam, insert, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm.exc import StaleDataError

from flask_psp_connector.domain.payment import AddTransaction, Payment, match_transaction
from flask_psp_connector.domain.settle import PaymentChanges
from flask_psp_connector.platforms.embedded import rows
from flask_psp_connector.platforms.embedded.pipeline import execute_many, fetch_together
from flask_psp_connector.platforms.embedded.schema import PaymentRow, TransactionRow, table_of, utcnow

_payments = table_of(PaymentRow)
_transactions = table_of(TransactionRow)

# SQLite writes a payment's new transactions and the new states of its others in one
# statement (executed for each row): a known id keeps its row and takes the new state.
_UPSERT_TRANSACTIONS = sqlite_insert(_transactions)
_UPSERT_TRANSACTIONS = _UPSERT_TRANSACTIONS.on_conflict_do_update(
    index_elements=[_transactions.c.id], set_={"state": _UPSERT_TRANSACTIONS.excluded.state})
_BUMP_PAYMENT = (
    update(_payments)
    .where(_payments.c.id == bindparam("bumped_id"), _payments.c.version == bindparam("old_version"))
    .values(version=bindparam("new_version"), updated_at=bindparam("now"),
            interface_id=bindparam("new_interface_id"), method=bindparam("new_method"),
            stale_reason=bindparam("new_stale_reason"))
)
_BUMP_PAYMENT_RETURNING = _BUMP_PAYMENT.returning(_payments.c.id)


def applied(payment: Payment, changes: PaymentChanges) -> Payment:
    """``payment`` with ``changes`` recorded by the model's matching rules, in memory only."""
    current = list(payment.transactions)
    for draft in changes.transactions:
        change = match_transaction(current, draft)
        if isinstance(change, AddTransaction):
            current.append(rows.transaction(SimpleNamespace(**rows.transaction_values(draft, payment.id,
                                                                                       len(current) + 1))))
        elif change is not None:
            current = [replace(t, state=change.state) if t.id == change.transaction_id else t for t in current]
    return replace(payment, interface_id=payment.interface_id or changes.interface_id,
                   method=payment.method or changes.method,
                   stale_reason=payment.stale_reason or changes.stale_reason, transactions=tuple(current))


def store(connection: Connection, before: Payment, after: Payment) -> Payment:
    """Write what :func:`applied` changed from ``before`` (as read under the lock) to ``after``."""
    work = write_work(connection.dialect.name, before, after)
    if work is None:
        return before
    if connection.dialect.name != "postgresql":
        written, bump = work
        if written:
            execute_many(connection, _UPSERT_TRANSACTIONS, written)
        (bumped_rows,) = fetch_together(connection, [(_BUMP_PAYMENT_RETURNING, bump)])
        bumped = len(bumped_rows)
    else:
        (bumped_rows,) = fetch_together(connection, [work])
        bumped = len(bumped_rows)
    return stored(before, after, bumped)


def stored(before: Payment, after: Payment, bumped: int) -> Payment:
    """``after`` at its new version, once its write bumped one payment row (else a lost race)."""
    if bumped != 1:
        raise StaleDataError(f"Payment {before.id} changed under its lock.")
    return replace(after, version=before.version + 1)


def write_work(dialect: str, before: Payment, after: Payment) -> Any:
    """The writes from ``before`` to ``after`` (``None`` when nothing changed): the rows of
    the new and changed transactions and the version bump on SQLite; one statement and its
    values on PostgreSQL."""
    known = {t.id: t.state for t in before.transactions}
    written = [(seq, t) for seq, t in enumerate(after.transactions, 1) if known.get(t.id) != t.state]
    stale = after.stale_reason
    if not written and (after.interface_id, after.method, stale) == (
            before.interface_id, before.method, before.stale_reason):
        return None
    bump = {"bumped_id": after.id, "old_version": before.version, "new_version": before.version + 1,
            "now": utcnow(), "new_interface_id": after.interface_id, "new_method": after.method,
            "new_stale_reason": stale.value if stale else None}
    if dialect != "postgresql":
        return [rows.row_of_transaction(t, after.id, seq) for seq, t in written], bump
    # One statement. No parameter is named like a column: an UPDATE in the statement would
    # SET that column too.
    changed = [t for _, t in written if t.id in known]
    added = [rows.row_of_transaction(t, after.id, seq) for seq, t in written if t.id not in known]
    numbered = dict(bump)
    for number, transaction in enumerate(changed):
        numbered |= {f"c{number}_id": transaction.id, f"c{number}_state": transaction.state.value}
    for number, values in enumerate(added):
        numbered |= {f"a{number}_{name}": value for name, value in values.items()}
    return _write_back(len(changed), len(added)), numbered


@lru_cache(maxsize=64)
def _write_back(changed: int, added: int) -> Update:
    """PostgreSQL's :func:`_write` for ``changed`` and ``added`` transactions: data-modifying
    CTEs and the payment's bump, in one round trip (built once per shape)."""
    ctes = [
        update(_transactions).where(_transactions.c.id == bindparam(f"c{number}_id"))
        .values(state=bindparam(f"c{number}_state")).returning(_transactions.c.id).cte(f"changed_{number}")
        for number in range(changed)
    ]
    # One single-row INSERT per transaction added: SQLAlchemy does not cache the compiled
    # form of a multi-row VALUES, and compiling this statement costs more than running it.
    ctes += [
        insert(_transactions).values({column.name: bindparam(f"a{number}_{column.name}", type_=column.type)
                                      for column in _transactions.c}).returning(_transactions.c.id).cte(f"added_{number}")
        for number in range(added)
    ]
    return _BUMP_PAYMENT.add_cte(*ctes).returning(_payments.c.id)
