"""Reading the audit log: filters and keyset pagination, newest first."""

from datetime import datetime

from payplane_core.pagination import CursorNotFound, newest_first
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from webhooks.models import WebhookLog

__all__ = ["CursorNotFound", "search"]


async def search(
    session: AsyncSession,
    *,
    limit: int,
    starting_after: str | None = None,
    provider: str | None = None,
    verdict: str | None = None,
    reason: str | None = None,
    payment_id: str | None = None,
    webhook_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> tuple[list[WebhookLog], bool]:
    query = select(WebhookLog)
    for column, value in (
        (WebhookLog.provider, provider),
        (WebhookLog.verdict, verdict),
        (WebhookLog.reason, reason),
        (WebhookLog.payment_id, payment_id),
        (WebhookLog.webhook_id, webhook_id),
    ):
        if value is not None:
            query = query.where(column == value)
    if since is not None:
        query = query.where(WebhookLog.received_at >= since)
    if until is not None:
        query = query.where(WebhookLog.received_at < until)
    return await newest_first(
        session,
        query,
        time=WebhookLog.received_at,
        ident=WebhookLog.id,
        limit=limit,
        starting_after=starting_after,
    )
