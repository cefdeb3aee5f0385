"""Tables of the embedded store (SQLAlchemy 2 declarative mapping)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    """The current time, timezone-aware."""
    return datetime.now(UTC)


def hash_secret(value: str) -> str:
    """SHA-256 hex digest: how bearer credentials (session ids, tokens, secrets) are stored."""
    return hashlib.sha256(value.encode()).hexdigest()


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp on every backend (SQLite keeps no zone: read as UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    """Declarative base holding the embedded store's metadata."""

    type_annotation_map = {
        dict[str, Any]: JSON,
        list[str]: JSON,
        list[dict[str, Any]]: JSON,
        datetime: UTCDateTime,
    }


def table_of(row: type[Base]) -> Table:
    """The Core table of a mapped class (for the prebuilt statements of hot paths)."""
    return Base.metadata.tables[row.__tablename__]


class CartRow(Base):
    __tablename__ = "psp_carts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    version: Mapped[int] = mapped_column(nullable=False)
    currency_code: Mapped[str] = mapped_column(String(3))
    shipping_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    tax_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    state: Mapped[str] = mapped_column(String(16), default="Active")
    customer_id: Mapped[str | None] = mapped_column(String(64))
    customer_email: Mapped[str | None] = mapped_column(String(254))
    shipping_address: Mapped[dict[str, Any] | None]
    billing_address: Mapped[dict[str, Any] | None]
    shipping_method_name: Mapped[str | None] = mapped_column(String(256))
    country: Mapped[str | None] = mapped_column(String(2))
    store_key: Mapped[str | None] = mapped_column(String(256))
    tax_calculation_references: Mapped[list[str] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    line_items: Mapped[list[LineItemRow]] = relationship(
        order_by="LineItemRow.position", cascade="all, delete-orphan", lazy="selectin"
    )

    __mapper_args__ = {"version_id_col": version}


class LineItemRow(Base):
    __tablename__ = "psp_line_items"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    cart_id: Mapped[str] = mapped_column(ForeignKey("psp_carts.id", ondelete="CASCADE"), index=True)
    position: Mapped[int]
    sku: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(256))
    quantity: Mapped[int]
    unit_price: Mapped[int] = mapped_column(BigInteger)


class PaymentRow(Base):
    __tablename__ = "psp_payments"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    version: Mapped[int] = mapped_column(nullable=False)
    cart_id: Mapped[str] = mapped_column(ForeignKey("psp_carts.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency_code: Mapped[str] = mapped_column(String(3))
    fraction_digits: Mapped[int]
    payment_interface: Mapped[str] = mapped_column(String(64))
    interface_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    method: Mapped[str | None] = mapped_column(String(64))
    client_secret: Mapped[str | None] = mapped_column(String(255))
    intent_variant: Mapped[str | None] = mapped_column(String(255))
    cart_fingerprint: Mapped[str | None] = mapped_column(String(64))
    cart_version: Mapped[int | None] = mapped_column()
    stale_reason: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    transactions: Mapped[list[TransactionRow]] = relationship(
        order_by="TransactionRow.seq", cascade="all, delete-orphan", lazy="selectin"
    )

    __mapper_args__ = {"version_id_col": version}


class TransactionRow(Base):
    __tablename__ = "psp_transactions"
    __table_args__ = (UniqueConstraint("payment_id", "type", "interaction_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    payment_id: Mapped[str] = mapped_column(ForeignKey("psp_payments.id", ondelete="CASCADE"))
    seq: Mapped[int]
    type: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency_code: Mapped[str] = mapped_column(String(3))
    fraction_digits: Mapped[int]
    interaction_id: Mapped[str] = mapped_column(String(255))
    timestamp: Mapped[datetime] = mapped_column(default=utcnow)


class OrderRow(Base):
    __tablename__ = "psp_orders"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    version: Mapped[int] = mapped_column(nullable=False)
    cart_id: Mapped[str] = mapped_column(ForeignKey("psp_carts.id"), unique=True)
    order_number: Mapped[str] = mapped_column(String(32), unique=True)
    payment_state: Mapped[str] = mapped_column(String(32))
    currency_code: Mapped[str] = mapped_column(String(3))
    total: Mapped[int] = mapped_column(BigInteger)
    shipping_amount: Mapped[int] = mapped_column(BigInteger)
    tax_amount: Mapped[int] = mapped_column(BigInteger)
    line_items: Mapped[list[dict[str, Any]]]
    customer_email: Mapped[str | None] = mapped_column(String(254))
    shipping_address: Mapped[dict[str, Any] | None]
    billing_address: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __mapper_args__ = {"version_id_col": version}


class SessionRow(Base):
    __tablename__ = "psp_sessions"

    #: SHA-256 of the session id: the id is a credential and is never stored in clear.
    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    cart_id: Mapped[str] = mapped_column(ForeignKey("psp_carts.id"), index=True)
    merchant_return_url: Mapped[str | None] = mapped_column(String(2048))
    allowed_payment_methods: Mapped[list[str]]
    expires_at: Mapped[datetime]


class OAuthClientRow(Base):
    __tablename__ = "psp_oauth_clients"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(128))
    scope: Mapped[str] = mapped_column(String(1024))
    name: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OAuthTokenRow(Base):
    __tablename__ = "psp_oauth_tokens"

    #: SHA-256 of the access token; the token itself is only ever returned to its client.
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("psp_oauth_clients.client_id", ondelete="CASCADE"))
    scope: Mapped[str] = mapped_column(String(1024))
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class StripeEventRow(Base):
    """The inbox of Stripe events: one row per event id, written with the event's effects."""

    __tablename__ = "psp_stripe_events"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))
    payment_id: Mapped[str | None] = mapped_column(String(36))
    detail: Mapped[str] = mapped_column(String(512), default="")
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class EventFailureRow(Base):
    """A verified Stripe event whose processing failed (a transient error: Stripe retries
    it), written in a transaction of its own so that the failure outlives the rollback."""

    __tablename__ = "psp_stripe_event_failures"

    event_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(128))
    error: Mapped[str] = mapped_column(String(512))
    attempts: Mapped[int] = mapped_column(default=1)
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    payload: Mapped[str] = mapped_column(Text)


class GatewayRequestRow(Base):
    """An external gateway's answer to one request, keyed by the platform's own ids.

    A repeated request gets this answer again without calling Stripe. An asynchronous
    answer (HTTP 202) keeps its ``action_id`` until Stripe settles it.
    """

    __tablename__ = "psp_gateway_requests"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    status_code: Mapped[int]
    body: Mapped[dict[str, Any]]
    action_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    settled_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class GatewayCallbackRow(Base):
    """The outbox of signed callbacks to a platform: one row per settled action, kept
    until the platform accepts it, retried with backoff."""

    __tablename__ = "psp_gateway_callbacks"

    action_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    url: Mapped[str] = mapped_column(String(2048))
    payload: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(index=True)
    delivered_at: Mapped[datetime | None]
    last_error: Mapped[str] = mapped_column(String(512), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CustomerRow(Base):
    """A shop customer, and the Stripe Customer that holds their saved payment methods."""

    __tablename__ = "psp_customers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(256), default="")
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SavedPaymentMethodRow(Base):
    """A payment method a customer chose to save: Stripe's id and what a shop may display."""

    __tablename__ = "psp_saved_payment_methods"
    __table_args__ = (UniqueConstraint("customer_id", "stripe_payment_method_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("psp_customers.id", ondelete="CASCADE"))
    stripe_payment_method_id: Mapped[str] = mapped_column(String(255))
    brand: Mapped[str] = mapped_column(String(32), default="")
    last4: Mapped[str] = mapped_column(String(4), default="")
    exp_month: Mapped[int | None]
    exp_year: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


Index("ix_psp_transactions_payment", TransactionRow.payment_id, TransactionRow.seq)
Index("ix_psp_carts_customer", CartRow.customer_id)
