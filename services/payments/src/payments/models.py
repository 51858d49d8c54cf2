"""Tables of the payments database. Money is a BIGINT of minor units plus its currency."""

from datetime import datetime
from typing import Any

from payplane_core.db import TYPE_ANNOTATION_MAP
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    type_annotation_map = TYPE_ANNOTATION_MAP


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_iso"),
        CheckConstraint(
            "status IN ('pending','processing','succeeded','failed','canceled')",
            name="status_known",
        ),
        # Keyset pagination: newest first within one merchant.
        Index(
            "ix_payments_merchant_created", "merchant_id", text("created_at DESC"), text("id DESC")
        ),
        Index(
            "ix_payments_unfinished",
            "updated_at",
            postgresql_where=text("status IN ('pending', 'processing')"),
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(String(64))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str | None] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(Text)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class PaymentEvent(Base):
    """The timeline: one row per state change or notable step, never updated."""

    __tablename__ = "payment_events"
    __table_args__ = (Index("ix_payment_events_payment", "payment_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    payment_id: Mapped[str] = mapped_column(ForeignKey("payments.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]]
    at: Mapped[datetime]


class OutboxEvent(Base):
    """Transactional outbox: written with the change it announces, published by the relay."""

    __tablename__ = "outbox_events"
    __table_args__ = (
        CheckConstraint("state IN ('pending','published','failed')", name="state_known"),
        Index(
            "ix_outbox_ready",
            "next_retry_at",
            postgresql_where=text("state = 'pending'"),
        ),
        # Retention: published rows are deleted oldest first.
        Index("ix_outbox_published", "published_at", postgresql_where=text("state = 'published'")),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    payment_id: Mapped[str] = mapped_column(String(40))
    merchant_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(64))
    routing_key: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]]
    # Request id and W3C trace context, carried into the message headers.
    headers: Mapped[dict[str, Any]]
    state: Mapped[str] = mapped_column(String(16), server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_retry_at: Mapped[datetime]
    # Lease of the relay that claimed the row; a row whose lease ran out is claimed again.
    locked_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    published_at: Mapped[datetime | None]


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = (
        CheckConstraint("state IN ('in_flight','completed')", name="state_known"),
        Index("ix_idempotency_expires", "expires_at"),
    )

    merchant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    response_status: Mapped[int | None]
    # The first response's exact bytes, so a replay is byte-identical.
    response_body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    locked_until: Mapped[datetime]
    expires_at: Mapped[datetime]


class ReconciliationCheck(Base):
    """The reconciler's state for one unfinished payment: when to look again (also its lease
    while a reconciler works on it), and since when its provider has been unreachable."""

    __tablename__ = "reconciliation_checks"

    payment_id: Mapped[str] = mapped_column(
        ForeignKey("payments.id", ondelete="CASCADE"), primary_key=True
    )
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_check_at: Mapped[datetime]
    unreachable_since: Mapped[datetime | None]
    last_result: Mapped[str | None] = mapped_column(String(64))


class MonthlyUsage(Base):
    """Payments created per merchant and calendar month (UTC): the durable quota count.

    Incremented by the statement that inserts a payment (never for a replay or a refusal), so
    it always equals the payments that exist; Redis holds the gateway's fast copy.
    """

    __tablename__ = "monthly_usage"

    merchant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    period: Mapped[str] = mapped_column(String(7), primary_key=True)  # e.g. 2026-11
    payments: Mapped[int] = mapped_column(BigInteger)
