"""Internal audit API over every provider webhook received."""

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from payplane_core.app import Internal
from payplane_core.problems import Problem

from webhooks import audit
from webhooks.api.deps import Sessions
from webhooks.models import WebhookLog
from webhooks.schemas import WebhookLogOut, WebhookLogPage

router = APIRouter(prefix="/internal/v1/webhook-logs", tags=["audit"])


async def operator_only(identity: Internal) -> None:
    if identity.caller == "gateway":
        raise Problem(403, "internal-only", "The audit log is not reachable from outside.")


@router.get("", response_model=WebhookLogPage, dependencies=[Depends(operator_only)])
async def list_logs(
    sessions: Sessions,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    starting_after: Annotated[str | None, Query(max_length=40)] = None,
    provider: Annotated[str | None, Query(max_length=63)] = None,
    verdict: Literal["accepted", "rejected", "duplicate"] | None = None,
    reason: Annotated[str | None, Query(max_length=64)] = None,
    payment_id: Annotated[str | None, Query(max_length=64)] = None,
    webhook_id: Annotated[str | None, Query(max_length=255)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> WebhookLogPage:
    async with sessions() as session:
        try:
            rows, has_more = await audit.search(
                session,
                limit=limit,
                starting_after=starting_after,
                provider=provider,
                verdict=verdict,
                reason=reason,
                payment_id=payment_id,
                webhook_id=webhook_id,
                since=since,
                until=until,
            )
        except audit.CursorNotFound:
            raise Problem(404, "cursor-not-found", "starting_after names no log entry.") from None
    data = [WebhookLogOut.model_validate(r, from_attributes=True) for r in rows]
    return WebhookLogPage(
        data=data, has_more=has_more, next_cursor=data[-1].id if has_more else None
    )


@router.get("/{log_id}", response_model=WebhookLogOut, dependencies=[Depends(operator_only)])
async def get_log(log_id: str, sessions: Sessions) -> WebhookLogOut:
    async with sessions() as session:
        row = await session.get(WebhookLog, log_id)
    if row is None:
        raise Problem(404, "log-not-found", f"No webhook log {log_id}.")
    return WebhookLogOut.model_validate(row, from_attributes=True)
