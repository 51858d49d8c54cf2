"""Audit-log retention: old rows go, rows still waiting to reach payments stay."""

from datetime import UTC, datetime, timedelta

from payplane_core.ids import new_id
from payplane_core.retention import purge
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from webhooks.core.config import Settings
from webhooks.main import log_retention

from tests.support.internal import internal


async def test_old_audit_rows_are_purged_except_pending_handoffs(logs_url):
    engine = create_async_engine(logs_url)
    old = datetime(2020, 1, 1, tzinfo=UTC)
    marker = new_id("req")
    rows = [("rejected", "none"), ("accepted", "done"), ("accepted", "pending")]
    async with engine.begin() as conn:
        for verdict, handoff in rows:
            await conn.execute(
                text(
                    "INSERT INTO webhook_logs (id, received_at, request_id, provider, webhook_id, "
                    "verdict, headers, body, handoff) VALUES (:id, :at, :r, 'p', :w, :v, '{}', "
                    "'', :h)"
                ),
                {
                    "id": new_id("whl"),
                    "at": old,
                    "r": marker,
                    "w": new_id("m"),
                    "v": verdict,
                    "h": handoff,
                },
            )
    rule = log_retention(
        Settings(DATABASE_URL=logs_url, WEBHOOK_LOG_RETENTION_DAYS=30, **internal("webhooks"))
    )
    await purge(engine, rule, now=lambda: old + timedelta(days=29))
    async with engine.connect() as conn:
        count = text("SELECT handoff FROM webhook_logs WHERE request_id = :r ORDER BY handoff")
        assert len((await conn.execute(count, {"r": marker})).all()) == 3
    await purge(engine, rule, now=lambda: old + timedelta(days=31), batch=1)
    async with engine.connect() as conn:
        left = [r.handoff for r in await conn.execute(count, {"r": marker})]
    await engine.dispose()
    assert left == ["pending"]
