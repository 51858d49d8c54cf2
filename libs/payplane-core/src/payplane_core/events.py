"""The payment event envelope: the one message format on the ``payments`` exchange.

Written by the payments outbox, checked by the relay before it publishes, parsed by every
consumer (providers, notifier) with this same model, so producer and consumers cannot drift
apart. The body is exactly what a merchant's webhook carries: ``{"type", "timestamp", "data"}``
with ``data`` the payment as the public API shows it. AMQP properties carry the rest:
``message_id`` is the event id (consumers deduplicate on it), headers ``payment-id``,
``merchant-id``, ``x-request-id`` and the W3C trace context.
"""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

PaymentStatus = Literal["pending", "processing", "succeeded", "failed", "canceled"]
EventType = Literal[
    "payment.pending",
    "payment.processing",
    "payment.succeeded",
    "payment.failed",
    "payment.canceled",
]


class InvalidEvent(ValueError):
    """A message body that is not a payment event: never retried, dead-lettered at once."""


class PaymentData(BaseModel):
    """The payment as the public API shows it. What every consumer acts on is required; the
    rest is optional so that relay-only fixtures and benches can publish minimal rows."""

    # Unknown fields are ignored, not refused: a newer producer may add one during a rollout.
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str = Field(min_length=1, max_length=64)
    amount: int = Field(gt=0, strict=True)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    status: PaymentStatus
    merchant_id: str | None = Field(default=None, min_length=1, max_length=64)
    provider: str | None = None
    description: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None


class PaymentEvent(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    type: EventType
    timestamp: datetime
    data: PaymentData

    @model_validator(mode="after")
    def _type_is_the_status(self) -> "PaymentEvent":
        if self.type != f"payment.{self.data.status}":
            raise ValueError("type must be payment.<data.status>")
        return self

    @property
    def routing_key(self) -> str:
        return self.type

    @classmethod
    def of(cls, payment: dict[str, Any], *, at: datetime) -> "PaymentEvent":
        """The event announcing ``payment``'s current status."""
        return cls(type=f"payment.{payment['status']}", timestamp=at, data=payment)

    @classmethod
    def parse(cls, body: bytes | str) -> "PaymentEvent":
        try:
            return cls.model_validate_json(body)
        except ValidationError as exc:
            fields = ", ".join(".".join(map(str, e["loc"])) or e["type"] for e in exc.errors())
            raise InvalidEvent(f"not a payment event ({fields[:200]})") from None

    def payload(self) -> dict[str, Any]:
        """The JSON body (what the merchant's webhook will carry)."""
        return self.model_dump(mode="json")
