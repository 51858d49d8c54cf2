"""Request and response bodies of the public API."""

from datetime import datetime
from typing import Annotated, Any

from payplane_core.text import CleanStr
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from payments.currencies import ISO_4217
from payments.state import Status

MAX_AMOUNT = 999_999_999_999  # minor units; far above any single card payment
MAX_METADATA_KEYS = 20
# A payment id in a path or cursor: clean text, bounded (an unknown id is then a plain 404).
PaymentId = Annotated[CleanStr, StringConstraints(max_length=64)]

# CleanStr: NUL and lone surrogates are refused here (422), never discovered by PostgreSQL.
MetadataKey = Annotated[CleanStr, StringConstraints(min_length=1, max_length=40)]
MetadataValue = Annotated[CleanStr, StringConstraints(max_length=500)]


class PaymentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    amount: int = Field(gt=0, le=MAX_AMOUNT, description="Positive integer in minor units.")
    currency: CleanStr = Field(
        description="ISO 4217 code, upper case.",
        json_schema_extra={"enum": sorted(ISO_4217)},  # documented as enforced
    )
    description: CleanStr | None = Field(default=None, max_length=1000)
    metadata: dict[MetadataKey, MetadataValue] = Field(
        default_factory=dict, max_length=MAX_METADATA_KEYS
    )

    @field_validator("currency")
    @classmethod
    def _iso_currency(cls, value: str) -> str:
        if value not in ISO_4217:
            raise ValueError("must be an upper-case ISO 4217 currency code")
        return value


class PaymentOut(BaseModel):
    id: str
    merchant_id: str
    amount: int
    currency: str
    status: Status
    provider: str | None
    description: str | None
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class PaymentPage(BaseModel):
    data: list[PaymentOut]
    has_more: bool
    next_cursor: str | None


class TimelineEntry(BaseModel):
    type: str
    status: Status
    at: datetime
    source: str
    detail: dict[str, Any]


class Tracking(BaseModel):
    payment_id: str
    status: Status
    events: list[TimelineEntry]


class EventIn(BaseModel):
    """Internal: a step reported by another service, optionally changing the status."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_.]*$")
    status: Status | None = None
    source: CleanStr = Field(min_length=1, max_length=64)
    provider: CleanStr | None = Field(default=None, max_length=64)
    detail: dict[str, Any] = Field(default_factory=dict)
    # What a provider's callback says was charged: when given, both must equal the payment's.
    # (Any positive int64: an amount no payment can have is a mismatch, not a bad request.)
    amount: int | None = Field(default=None, gt=0, lt=2**63)
    currency: CleanStr | None = Field(default=None, max_length=3)


class EventResult(BaseModel):
    payment: PaymentOut
    changed: bool
