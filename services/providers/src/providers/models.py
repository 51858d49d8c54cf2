"""Tables of the providers database: the registry, each payment's attempts and its routing."""

from datetime import datetime

from payplane_core.db import TYPE_ANNOTATION_MAP
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    type_annotation_map = TYPE_ANNOTATION_MAP


class Provider(Base):
    """A registered provider. Its API key and webhook secret are AES-GCM ciphertexts."""

    __tablename__ = "providers"
    __table_args__ = (
        CheckConstraint("weight > 0", name="weight_positive"),
        CheckConstraint("timeout_ms > 0", name="timeout_positive"),
        CheckConstraint("failure_threshold > 0", name="threshold_positive"),
        CheckConstraint("open_seconds > 0", name="open_positive"),
    )

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200))
    endpoint: Mapped[str] = mapped_column(String(500))
    api_key_encrypted: Mapped[str] = mapped_column(Text)
    webhook_secret_encrypted: Mapped[str] = mapped_column(Text)
    # Lower is preferred; equal priorities share traffic by weight.
    priority: Mapped[int] = mapped_column(Integer)
    weight: Mapped[int] = mapped_column(Integer)
    # Empty: every currency.
    currencies: Mapped[list[str]] = mapped_column(ARRAY(String(3)))
    timeout_ms: Mapped[int] = mapped_column(Integer)
    failure_threshold: Mapped[int] = mapped_column(Integer)
    open_seconds: Mapped[int] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Attempt(Base):
    """One call to one provider for one payment (the failover audit trail)."""

    __tablename__ = "attempts"
    __table_args__ = (
        UniqueConstraint("payment_id", "number", name="attempt_number_unique"),
        CheckConstraint(
            "state IN ('sending','accepted','failed','canceled','unknown')",
            name="state_known",
        ),
        Index("ix_attempts_provider_started", "provider", "started_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    payment_id: Mapped[str] = mapped_column(String(40))
    number: Mapped[int] = mapped_column(Integer)
    provider: Mapped[str] = mapped_column(String(63))
    state: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    charge_id: Mapped[str | None] = mapped_column(String(64))
    http_status: Mapped[int | None]
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class Routing(Base):
    """The routing decision for one payment, written once: makes redelivery a no-op."""

    __tablename__ = "routings"
    __table_args__ = (CheckConstraint("outcome IN ('accepted','failed')", name="outcome_known"),)

    payment_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str | None] = mapped_column(String(63))
    reason: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[datetime]
