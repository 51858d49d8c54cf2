from datetime import datetime

from pydantic import BaseModel


class AttemptOut(BaseModel):
    number: int
    trigger: str
    url: str | None
    started_at: datetime
    latency_ms: int
    status_code: int | None
    succeeded: bool
    error: str | None
    resulting_state: str


class DeliveryOut(BaseModel):
    id: str
    webhook_id: str
    merchant_id: str
    payment_id: str
    event_type: str
    state: str
    attempts: int
    next_attempt_at: datetime | None
    last_status: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None


class DeliveryDetail(DeliveryOut):
    attempt_log: list[AttemptOut]


class DeliveryPage(BaseModel):
    data: list[DeliveryOut]
    has_more: bool
    next_cursor: str | None


class Redelivered(BaseModel):
    delivery: DeliveryOut
    attempt: AttemptOut
