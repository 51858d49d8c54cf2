"""Tables of the merchants database.

No key or secret is ever stored in clear: API keys as SHA-256 hashes (they are only compared),
signing and webhook secrets AES-GCM encrypted (HMAC needs the secret itself).
"""

from datetime import datetime
from typing import Any

from payplane_core.db import TYPE_ANNOTATION_MAP
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Double,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    type_annotation_map = TYPE_ANNOTATION_MAP


class Merchant(Base):
    __tablename__ = "merchants"
    __table_args__ = (
        CheckConstraint("status IN ('active','deleted')", name="status_known"),
        CheckConstraint("requests_per_second > 0", name="rps_positive"),
        CheckConstraint("burst >= 1", name="burst_positive"),
        CheckConstraint("payments_per_month >= 0", name="quota_not_negative"),
        # A name is taken only while its merchant lives: a deleted merchant frees it.
        Index(
            "uq_merchants_live_name",
            "name",
            unique=True,
            postgresql_where=text("status <> 'deleted'"),
        ),
        Index("uq_merchants_external_ref", "external_ref", unique=True),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    # A Kubernetes resource name (DNS-1123 label), unique: the operator finds merchants by it.
    name: Mapped[str] = mapped_column(String(63))
    # Who asked for it outside this service (the Merchant resource's uid): creating twice with
    # one reference returns the first merchant, so a caller that crashed can simply retry.
    external_ref: Mapped[str | None] = mapped_column(String(100))
    display_name: Mapped[str] = mapped_column(String(200))
    plan: Mapped[str] = mapped_column(String(40))
    webhook_url: Mapped[str | None] = mapped_column(Text)
    requests_per_second: Mapped[float] = mapped_column(Double)
    burst: Mapped[int] = mapped_column(Integer)
    payments_per_month: Mapped[int] = mapped_column(BigInteger)
    allowed_providers: Mapped[list[str]] = mapped_column(ARRAY(String(63)))
    status: Mapped[str] = mapped_column(String(16))
    webhook_secret_enc: Mapped[str] = mapped_column(Text)
    # After a rotation, webhooks carry a signature with the replaced secret too until this
    # moment (Standard Webhooks allows several), so the merchant can switch at its own pace.
    previous_webhook_secret_enc: Mapped[str | None] = mapped_column(Text)
    previous_webhook_secret_until: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ApiKey(Base):
    __tablename__ = "api_keys"
    __table_args__ = (
        CheckConstraint("kind IN ('api','read')", name="kind_known"),
        # An API key signs its writes, so it has a signing secret; a read key never writes.
        CheckConstraint("(kind = 'api') = (signing_secret_enc IS NOT NULL)", name="secret_iff_api"),
        Index("ix_api_keys_merchant", "merchant_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(8))
    # The first characters of the key (``pk_Ab12cd34``), to recognise it in lists and logs.
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(ARRAY(String(40)))
    signing_secret_enc: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    # Set when the key was rotated: the key that replaces it.
    replaced_by: Mapped[str | None] = mapped_column(String(40))


class MerchantEvent(Base):
    """Audit trail: one row per change to a merchant or its keys, never updated, no secrets."""

    __tablename__ = "merchant_events"
    __table_args__ = (Index("ix_merchant_events_merchant", "merchant_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]]
    at: Mapped[datetime] = mapped_column(server_default=text("now()"))
