"""The embedded store's schema as it stood when migrations began.

A store created before then (by ``create_all``, with no version table) is adopted here:
the tables it lacks are created, and so are the nullable columns an earlier release did
not have yet; everything it has is left as it is.

Revision ID: 0001
Revises:
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# A frozen copy of the tables: later changes to the models belong in later revisions.
metadata = sa.MetaData()

sa.Table(
    "psp_carts",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("currency_code", sa.String(3), nullable=False),
    sa.Column("shipping_amount", sa.BigInteger(), nullable=False),
    sa.Column("tax_amount", sa.BigInteger(), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("customer_id", sa.String(64), nullable=True),
    sa.Column("customer_email", sa.String(254), nullable=True),
    sa.Column("shipping_address", sa.JSON(), nullable=True),
    sa.Column("billing_address", sa.JSON(), nullable=True),
    sa.Column("shipping_method_name", sa.String(256), nullable=True),
    sa.Column("country", sa.String(2), nullable=True),
    sa.Column("store_key", sa.String(256), nullable=True),
    sa.Column("tax_calculation_references", sa.JSON(), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_psp_carts_customer", "customer_id"),
)

sa.Table(
    "psp_customers",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("email", sa.String(254), nullable=False, unique=True),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("stripe_customer_id", sa.String(255), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

sa.Table(
    "psp_gateway_callbacks",
    metadata,
    sa.Column("action_id", sa.String(255), primary_key=True),
    sa.Column("url", sa.String(2048), nullable=False),
    sa.Column("payload", sa.Text(), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_error", sa.String(512), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

sa.Table(
    "psp_gateway_requests",
    metadata,
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("status_code", sa.Integer(), nullable=False),
    sa.Column("body", sa.JSON(), nullable=False),
    sa.Column("action_id", sa.String(255), nullable=True, unique=True),
    sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

sa.Table(
    "psp_oauth_clients",
    metadata,
    sa.Column("client_id", sa.String(64), primary_key=True),
    sa.Column("secret_hash", sa.String(128), nullable=False),
    sa.Column("scope", sa.String(1024), nullable=False),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

sa.Table(
    "psp_stripe_event_failures",
    metadata,
    sa.Column("event_id", sa.String(255), primary_key=True),
    sa.Column("type", sa.String(128), nullable=False),
    sa.Column("error", sa.String(512), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("payload", sa.Text(), nullable=False),
)

sa.Table(
    "psp_stripe_events",
    metadata,
    sa.Column("id", sa.String(255), primary_key=True),
    sa.Column("type", sa.String(128), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("payment_id", sa.String(36), nullable=True),
    sa.Column("detail", sa.String(512), nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, index=True),
)

sa.Table(
    "psp_line_items",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("cart_id", sa.String(36), sa.ForeignKey("psp_carts.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("position", sa.Integer(), nullable=False),
    sa.Column("sku", sa.String(64), nullable=False),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("quantity", sa.Integer(), nullable=False),
    sa.Column("unit_price", sa.BigInteger(), nullable=False),
)

sa.Table(
    "psp_oauth_tokens",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("client_id", sa.String(64), sa.ForeignKey("psp_oauth_clients.client_id", ondelete="CASCADE"), nullable=False),
    sa.Column("scope", sa.String(1024), nullable=False),
    sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False, index=True),
)

sa.Table(
    "psp_orders",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("cart_id", sa.String(36), sa.ForeignKey("psp_carts.id"), nullable=False, unique=True),
    sa.Column("order_number", sa.String(32), nullable=False, unique=True),
    sa.Column("payment_state", sa.String(32), nullable=False),
    sa.Column("currency_code", sa.String(3), nullable=False),
    sa.Column("total", sa.BigInteger(), nullable=False),
    sa.Column("shipping_amount", sa.BigInteger(), nullable=False),
    sa.Column("tax_amount", sa.BigInteger(), nullable=False),
    sa.Column("line_items", sa.JSON(), nullable=False),
    sa.Column("customer_email", sa.String(254), nullable=True),
    sa.Column("shipping_address", sa.JSON(), nullable=True),
    sa.Column("billing_address", sa.JSON(), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

sa.Table(
    "psp_payments",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("cart_id", sa.String(36), sa.ForeignKey("psp_carts.id"), nullable=False, index=True),
    sa.Column("amount", sa.BigInteger(), nullable=False),
    sa.Column("currency_code", sa.String(3), nullable=False),
    sa.Column("fraction_digits", sa.Integer(), nullable=False),
    sa.Column("payment_interface", sa.String(64), nullable=False),
    sa.Column("interface_id", sa.String(255), nullable=True, unique=True),
    sa.Column("method", sa.String(64), nullable=True),
    sa.Column("client_secret", sa.String(255), nullable=True),
    sa.Column("intent_variant", sa.String(255), nullable=True),
    sa.Column("cart_fingerprint", sa.String(64), nullable=True),
    sa.Column("cart_version", sa.Integer(), nullable=True),
    sa.Column("stale_reason", sa.String(32), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

sa.Table(
    "psp_saved_payment_methods",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("customer_id", sa.String(36), sa.ForeignKey("psp_customers.id", ondelete="CASCADE"), nullable=False),
    sa.Column("stripe_payment_method_id", sa.String(255), nullable=False),
    sa.Column("brand", sa.String(32), nullable=False),
    sa.Column("last4", sa.String(4), nullable=False),
    sa.Column("exp_month", sa.Integer(), nullable=True),
    sa.Column("exp_year", sa.Integer(), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("customer_id", "stripe_payment_method_id"),
)

sa.Table(
    "psp_sessions",
    metadata,
    sa.Column("id_hash", sa.String(64), primary_key=True),
    sa.Column("cart_id", sa.String(36), sa.ForeignKey("psp_carts.id"), nullable=False, index=True),
    sa.Column("merchant_return_url", sa.String(2048), nullable=True),
    sa.Column("allowed_payment_methods", sa.JSON(), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)

sa.Table(
    "psp_transactions",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("payment_id", sa.String(36), sa.ForeignKey("psp_payments.id", ondelete="CASCADE"), nullable=False),
    sa.Column("seq", sa.Integer(), nullable=False),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("amount", sa.BigInteger(), nullable=False),
    sa.Column("currency_code", sa.String(3), nullable=False),
    sa.Column("fraction_digits", sa.Integer(), nullable=False),
    sa.Column("interaction_id", sa.String(255), nullable=False),
    sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("payment_id", "type", "interaction_id"),
    sa.Index("ix_psp_transactions_payment", "payment_id", "seq"),
)


def upgrade() -> None:
    """Create the missing tables, and the nullable columns a pre-migration store lacks."""
    bind = op.get_bind()
    present = set(sa.inspect(bind).get_table_names())
    for table in metadata.sorted_tables:
        if table.name not in present:
            table.create(bind)
            continue
        have = {column["name"] for column in sa.inspect(bind).get_columns(table.name)}
        for column in table.columns:
            if column.name not in have and column.nullable:
                op.add_column(table.name, sa.Column(column.name, column.type, nullable=True))


def downgrade() -> None:
    """Drop every table of the store."""
    metadata.drop_all(op.get_bind())
