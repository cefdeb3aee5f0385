"""Rows of the embedded store to domain objects: one mapper per entity.

The payment, transaction and cart mappers read attributes, so they take an ORM row as
well as a Core row of the hot path (whose transaction columns carry a ``t_`` prefix).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from itertools import groupby
from typing import Any

from flask_psp_connector.domain.model import Address, Cart, CartState, Customer, LineItem, Order, SavedPaymentMethod
from flask_psp_connector.domain.money import Money, iso_fraction_digits
from flask_psp_connector.domain.payment import (
    Payment,
    StaleReason,
    Transaction,
    TransactionDraft,
    TransactionState,
    TransactionType,
)
from flask_psp_connector.platforms.embedded.schema import (
    CartRow,
    CustomerRow,
    OrderRow,
    PaymentRow,
    SavedPaymentMethodRow,
    TransactionRow,
    table_of,
    utcnow,
)

#: The transaction columns a payment's row is joined with, as :func:`payments` reads them.
TRANSACTION_COLUMNS = [column.label(f"t_{column.name}") for column in table_of(TransactionRow).c]


def address(data: dict[str, Any] | None) -> Address | None:
    """An address kept as JSON."""
    return None if data is None else Address(**data)


def cart(row: CartRow | Any, line_items: Iterable[Any] | None = None, prefix: str = "") -> Cart:
    """A cart row, with its line items (the ORM row's own unless given; their columns named
    ``prefix + column``)."""
    digits = iso_fraction_digits(row.currency_code)
    id_, sku, name, quantity, price = (prefix + column for column in ("id", "sku", "name", "quantity", "unit_price"))
    return Cart(
        id=row.id,
        version=row.version,
        currency_code=row.currency_code,
        line_items=tuple(
            LineItem(getattr(i, id_), getattr(i, sku), getattr(i, name), getattr(i, quantity),
                     Money(getattr(i, price), row.currency_code, digits))
            for i in (row.line_items if line_items is None else line_items)
        ),
        shipping_amount=row.shipping_amount,
        tax_amount=row.tax_amount,
        state=CartState(row.state),
        customer_id=row.customer_id,
        customer_email=row.customer_email,
        shipping_address=address(row.shipping_address),
        billing_address=address(row.billing_address),
        shipping_method_name=row.shipping_method_name,
        country=row.country,
        store_key=row.store_key,
        tax_calculation_references=tuple(row.tax_calculation_references or ()),
    )


def references(found: Iterable[str]) -> list[str] | None:
    """Stripe Tax calculation ids as stored (``None`` for none)."""
    kept = [str(reference) for reference in found if reference]
    return kept or None


def customer(row: CustomerRow) -> Customer:
    """A customer row."""
    return Customer(row.id, row.email, row.name, row.stripe_customer_id)


def saved_method(row: SavedPaymentMethodRow) -> SavedPaymentMethod:
    """A saved payment method row."""
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


def transaction_values(draft: TransactionDraft, payment_id: str, seq: int) -> dict[str, Any]:
    """The column values of a new transaction row for ``draft``."""
    return {
        "id": str(uuid.uuid4()),
        "payment_id": payment_id,
        "seq": seq,
        "type": draft.type.value,
        "state": draft.state.value,
        "amount": draft.amount.cent_amount,
        "currency_code": draft.amount.currency_code,
        "fraction_digits": draft.amount.fraction_digits,
        "interaction_id": draft.interaction_id,
        "timestamp": utcnow(),
    }


def row_of_transaction(transaction: Transaction, payment_id: str, seq: int) -> dict[str, Any]:
    """The column values of a transaction's row (the inverse of :func:`transaction`)."""
    amount = transaction.amount
    return {"id": transaction.id, "payment_id": payment_id, "seq": seq, "type": transaction.type.value,
            "state": transaction.state.value, "amount": amount.cent_amount, "currency_code": amount.currency_code,
            "fraction_digits": amount.fraction_digits, "interaction_id": transaction.interaction_id,
            "timestamp": transaction.timestamp}


def transaction(row: Any, prefix: str = "") -> Transaction:
    """A transaction from a row whose columns are named ``prefix + column``."""

    def column(name: str) -> Any:
        return getattr(row, prefix + name)

    return Transaction(
        id=column("id"),
        type=TransactionType(column("type")),
        state=TransactionState(column("state")),
        amount=Money(column("amount"), column("currency_code"), column("fraction_digits")),
        interaction_id=column("interaction_id"),
        timestamp=column("timestamp"),
    )


def payment(row: Any, transactions: Iterable[Transaction]) -> Payment:
    """A payment from its row (ORM or Core) and its transactions, oldest first."""
    return Payment(
        id=row.id,
        version=row.version,
        cart_id=row.cart_id,
        amount_planned=Money(row.amount, row.currency_code, row.fraction_digits),
        payment_interface=row.payment_interface,
        interface_id=row.interface_id,
        method=row.method,
        transactions=tuple(transactions),
        client_secret=row.client_secret,
        created_at=row.created_at,
        intent_variant=row.intent_variant or "",
        cart_fingerprint=row.cart_fingerprint or "",
        cart_version=row.cart_version or 0,
        stale_reason=StaleReason(row.stale_reason) if row.stale_reason else None,
    )


def payments(found: Iterable[Any]) -> list[Payment]:
    """Payments from Core rows of payments outer-joined with their :data:`TRANSACTION_COLUMNS`,
    each payment's rows together and in its transactions' order."""
    grouped = (list(group) for _, group in groupby(found, key=lambda row: row.id))
    return [payment(group[0], (transaction(t, "t_") for t in group if t.t_id is not None)) for group in grouped]


def payment_of(row: PaymentRow) -> Payment:
    """A payment from its ORM row (transactions loaded with it)."""
    return payment(row, (transaction(t) for t in row.transactions))


def order(row: OrderRow | Any, payment_ids: Iterable[str]) -> Order:
    """An order row and the ids of its cart's payments."""
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
        shipping_address=address(row.shipping_address),
        billing_address=address(row.billing_address),
        payment_ids=tuple(payment_ids),
        created_at=row.created_at,
    )
