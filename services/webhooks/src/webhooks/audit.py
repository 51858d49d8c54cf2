"""Reading the audit log: filters and keyset pagination, newest first."""

from datetime import datetime

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from webhooks.models import WebhookLog


class CursorNotFound(Exception):
    pass


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
    if starting_after is not None:
        cursor = await session.get(WebhookLog, starting_after)
        if cursor is None:
            raise CursorNotFound(starting_after)
        query = query.where(
            tuple_(WebhookLog.received_at, WebhookLog.id) < tuple_(cursor.received_at, cursor.id)
        )
    query = query.order_by(WebhookLog.received_at.desc(), WebhookLog.id.desc()).limit(limit + 1)
    rows = list(await session.scalars(query))
    return rows[:limit], len(rows) > limit
