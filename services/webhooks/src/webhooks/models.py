"""The ``logs`` database: every provider webhook received, accepted or rejected."""

from datetime import datetime
from typing import Any

from payplane_core.db import TYPE_ANNOTATION_MAP
from sqlalchemy import BigInteger, CheckConstraint, Index, String, Text, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    type_annotation_map = TYPE_ANNOTATION_MAP


class WebhookLog(Base):
    __tablename__ = "webhook_logs"
    __table_args__ = (
        CheckConstraint("verdict IN ('accepted','rejected','duplicate')", name="verdict_known"),
        CheckConstraint(
            "handoff IN ('none','pending','done','conflict','unknown_payment')",
            name="handoff_known",
        ),
        # One accepted row per provider message: the database, not a race, decides duplicates.
        Index(
            "uq_webhook_logs_accepted",
            "provider",
            "webhook_id",
            unique=True,
            postgresql_where=text("verdict = 'accepted'"),
        ),
        Index("ix_webhook_logs_received", text("received_at DESC"), text("id DESC")),
        Index("ix_webhook_logs_payment", "payment_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    received_at: Mapped[datetime]
    request_id: Mapped[str] = mapped_column(String(128))
    # What the request claimed, verified or not (a rejected row may name a provider it forged).
    provider: Mapped[str | None] = mapped_column(String(63))
    webhook_id: Mapped[str | None] = mapped_column(String(255))
    webhook_timestamp: Mapped[int | None] = mapped_column(BigInteger)
    verdict: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(64))
    event_type: Mapped[str | None] = mapped_column(String(64))
    payment_id: Mapped[str | None] = mapped_column(String(64))
    headers: Mapped[dict[str, Any]]
    body: Mapped[str] = mapped_column(Text)
    handoff: Mapped[str] = mapped_column(String(16), server_default="none")
    handoff_detail: Mapped[str | None] = mapped_column(Text)
