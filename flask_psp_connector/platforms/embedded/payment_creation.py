"""Creating a payment on the embedded store: no statement to check first.

The cart's foreign key refuses a payment for a missing cart and the primary key an
existing one, so a new payment takes one statement on PostgreSQL (the payment and its
transactions, inserted from the payment's ``RETURNING``) and two on SQLite; what was
written is returned without reading it back.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection, Select, bindparam, insert, select, union_all
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from flask_psp_connector.domain.payment import Payment
from flask_psp_connector.platforms.embedded import rows
from flask_psp_connector.platforms.embedded.schema import CartRow, PaymentRow, TransactionRow, table_of
from flask_psp_connector.ports import PaymentDraft

_carts = table_of(CartRow)
_payments = table_of(PaymentRow)
_transactions = table_of(TransactionRow)

_INSERT_NEW_PAYMENT = sqlite_insert(_payments).on_conflict_do_nothing(index_elements=[_payments.c.id])
_INSERT_TRANSACTION = insert(_transactions)
_CART_EXISTS = select(_carts.c.id).where(_carts.c.id == bindparam("cart_id"))


def new_rows(draft: PaymentDraft, now: datetime) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The payment's row and its transactions' rows, as ``draft`` describes them."""
    money = draft.amount_planned
    values = {
        "id": draft.id, "version": 1, "cart_id": draft.cart_id, "amount": money.cent_amount,
        "currency_code": money.currency_code, "fraction_digits": money.fraction_digits,
        "payment_interface": draft.payment_interface, "interface_id": draft.interface_id, "method": None,
        "client_secret": draft.client_secret, "intent_variant": draft.intent_variant,
        "cart_fingerprint": draft.cart_fingerprint or None, "cart_version": draft.cart_version or None,
        "stale_reason": None, "created_at": now, "updated_at": now,
    }
    return values, [rows.transaction_values(d, draft.id, seq) for seq, d in enumerate(draft.transactions, 1)]


def as_written(values: dict[str, Any], transactions: list[dict[str, Any]]) -> Payment:
    """The payment these rows make, as it would be read back."""
    return rows.payment(SimpleNamespace(**values), (rows.transaction(SimpleNamespace(**t)) for t in transactions))


def cart_exists(connection: Connection, cart_id: str) -> bool:
    """Whether the cart exists (to explain a refused insert)."""
    return connection.execute(_CART_EXISTS, {"cart_id": cart_id}).first() is not None


def insert_new(connection: Connection, values: dict[str, Any], transactions: list[dict[str, Any]]) -> bool:
    """Insert a payment and its transactions unless its id exists; whether it was inserted."""
    if connection.dialect.name == "postgresql":
        numbered = {f"p_{name}": value for name, value in values.items()}
        for number, transaction in enumerate(transactions):
            numbered |= {f"t{number}_{name}": value for name, value in transaction.items() if name != "payment_id"}
        return connection.execute(_create_statement(len(transactions)), numbered).first() is not None
    if connection.execute(_INSERT_NEW_PAYMENT, values).rowcount != 1:
        return False
    if transactions:
        connection.execute(_INSERT_TRANSACTION, transactions if len(transactions) > 1 else transactions[0])
    return True


@lru_cache(maxsize=8)
def _create_statement(transactions: int) -> Select[Any]:
    """PostgreSQL's :func:`insert_new` for ``transactions`` transactions: the payment's insert
    (nothing on a taken id) and its transactions' insert from what it returned, in one
    statement (built once per shape). Parameters are prefixed, as in :func:`.payment_writes.write_work`."""
    new_payment = (
        postgresql_insert(_payments)
        .values({column.name: bindparam(f"p_{column.name}", type_=column.type) for column in _payments.c})
        .on_conflict_do_nothing(index_elements=[_payments.c.id])
        .returning(_payments.c.id)
        .cte("new_payment")
    )
    added = select(new_payment.c.id)
    if transactions:
        names = [column.name for column in _transactions.c]
        sources = [
            select(*(new_payment.c.id if name == "payment_id"
                     else bindparam(f"t{number}_{name}", type_=_transactions.c[name].type).label(name)
                     for name in names))
            for number in range(transactions)
        ]
        source = sources[0] if transactions == 1 else union_all(*sources)
        added = added.add_cte(insert(_transactions).from_select(names, source).cte("new_transactions"))
    return added
