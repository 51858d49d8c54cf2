"""Tables of the notifier database: one delivery per event, one row per attempt."""

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
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    type_annotation_map = TYPE_ANNOTATION_MAP


class Delivery(Base):
    """An event on its way to one merchant. ``event_id`` is the constant ``webhook-id``."""

    __tablename__ = "deliveries"
    __table_args__ = (
        CheckConstraint("state IN ('pending','delivered','failed')", name="state_known"),
        # The retry loop's scan: due pending deliveries (claims push next_attempt_at forward).
        Index("ix_deliveries_due", "next_attempt_at", postgresql_where=text("state = 'pending'")),
        Index("ix_deliveries_merchant_created", "merchant_id", "created_at"),
        Index("ix_deliveries_state_created", "state", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(40), unique=True)
    merchant_id: Mapped[str] = mapped_column(String(64))
    payment_id: Mapped[str] = mapped_column(String(40))
    event_type: Mapped[str] = mapped_column(String(64))
    # The exact body signed and sent, so every redelivery carries the same bytes.
    body: Mapped[str] = mapped_column(Text)
    # Request id and W3C trace context from the message headers.
    trace: Mapped[dict[str, Any]]
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[datetime]
    # Lease of the notifier working on it; also the token that lets only that notifier record.
    locked_until: Mapped[datetime | None]
    last_status: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]


class DeliveryAttempt(Base):
    """Every attempt, successful or not, never updated."""

    __tablename__ = "delivery_attempts"
    __table_args__ = (
        CheckConstraint("trigger IN ('automatic','manual')", name="trigger_known"),
        Index("ix_delivery_attempts_delivery", "delivery_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(ForeignKey("deliveries.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    trigger: Mapped[str] = mapped_column(String(16))
    url: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime]
    latency_ms: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None]
    succeeded: Mapped[bool]
    error: Mapped[str | None] = mapped_column(Text)
    # The delivery's state once this attempt was recorded (the state change it caused).
    resulting_state: Mapped[str] = mapped_column(String(16))
