from datetime import datetime
from typing import Any

from pydantic import BaseModel


class WebhookLogOut(BaseModel):
    id: str
    received_at: datetime
    request_id: str
    provider: str | None
    webhook_id: str | None
    webhook_timestamp: int | None
    verdict: str
    reason: str | None
    event_type: str | None
    payment_id: str | None
    headers: dict[str, Any]
    body: str
    handoff: str
    handoff_detail: str | None


class WebhookLogPage(BaseModel):
    data: list[WebhookLogOut]
    has_more: bool
    next_cursor: str | None
