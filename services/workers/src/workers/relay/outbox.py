"""The relay's own SQL over the payments service's ``outbox_events`` table.

Claiming pushes ``next_retry_at`` to the end of the lease as well as setting ``locked_until``:
the partial index on ``next_retry_at WHERE state = 'pending'`` then finds both never-tried rows
and rows whose relay died, with one range scan, and a live relay's rows are simply not ready.
Times come from the database clock only. ``attempts`` is counted at claim time, so a row that
kills its relay every time still reaches its terminal state. Each statement is atomic on its own
(the claim's row locks last for its statement; the lease protects the rows after it), so each
runs outside any transaction on the pooled connection's asyncpg connection
(``payplane_core.db.Statement``): no BEGIN/COMMIT round trips, no SQLAlchemy execution layer.
"""

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from payplane_core.db import Statement, driver_connection
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

_MARK_SQL = """
    UPDATE outbox_events
    SET state = 'published', published_at = now(), locked_until = NULL, last_error = NULL
    WHERE id = ANY(CAST(:published AS text[])) AND state = 'pending'
"""

# The claim also marks the rows of the previous batch published (``published``: their ids,
# confirmed by the broker since): one statement per batch under load instead of two. Those
# rows are still leased to this relay, so ``ready`` could not see them anyway; they are left
# out by id as well, in case the lease ran out meanwhile (a row must not be changed twice in
# one statement).
_CLAIM = Statement(
    f"""
    WITH done AS ({_MARK_SQL}), ready AS (
        SELECT id FROM outbox_events
        WHERE state = 'pending' AND next_retry_at <= now()
          AND NOT id = ANY(CAST(:published AS text[]))
        ORDER BY next_retry_at
        LIMIT :batch
        FOR UPDATE SKIP LOCKED
    )
    UPDATE outbox_events AS o
    SET attempts = o.attempts + 1,
        locked_until = now() + make_interval(secs => CAST(:lease AS float8)),
        next_retry_at = now() + make_interval(secs => CAST(:lease AS float8))
    FROM ready
    WHERE o.id = ready.id
    RETURNING o.id, o.routing_key, o.event_type, o.payment_id, o.merchant_id,
              o.payload::text AS body, o.headers, o.attempts, o.created_at
    """  # noqa: S608 - a constant fragment, no input
)

_PUBLISHED = Statement(_MARK_SQL)

_FAILED = Statement(
    """
    UPDATE outbox_events
    SET state = CASE WHEN attempts >= :max_attempts THEN 'failed' ELSE 'pending' END,
        next_retry_at = now() + make_interval(secs => CAST(:delay AS float8)),
        locked_until = NULL, last_error = :error
    WHERE id = :id AND state = 'pending'
    """
)


@dataclass(frozen=True, slots=True)
class ClaimedEvent:
    id: str
    routing_key: str
    event_type: str
    payment_id: str
    merchant_id: str
    body: str  # the merchant webhook body, as JSON text
    headers: dict[str, Any]
    attempts: int
    created_at: datetime


async def claim_batch(
    engine: AsyncEngine, *, batch: int, lease_seconds: float, published: Sequence[str] = ()
) -> list[ClaimedEvent]:
    """Up to ``batch`` ready rows, leased to us; ``published``: rows to mark published first."""
    async with driver_connection(engine) as conn:
        rows = await _CLAIM.fetch(
            conn, {"batch": batch, "lease": lease_seconds, "published": list(published)}
        )
    return [ClaimedEvent(**row) for row in rows]


async def mark_published(engine: AsyncEngine, *, ids: list[str]) -> None:
    if ids:
        async with driver_connection(engine) as conn:
            await _PUBLISHED.execute(conn, {"published": ids})


def backoff_seconds(attempts: int, *, base: float, cap: float) -> float:
    """Exponential with jitter (half fixed, half random) so retries of a batch spread out."""
    delay = min(cap, base * 2 ** max(attempts - 1, 0))
    return delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 - jitter, not security


async def mark_failed(
    engine: AsyncEngine,
    *,
    failures: dict[str, tuple[int, str]],
    max_attempts: int,
    base: float,
    cap: float,
) -> list[float]:
    """``failures``: event id -> (attempts so far, error). Retry later or give up for good.
    Returns the delays (seconds) of the rows that will be retried."""
    if not failures:
        return []
    params = [
        {
            "id": event_id,
            "error": error[:2000],
            "max_attempts": max_attempts,
            "delay": backoff_seconds(attempts, base=base, cap=cap),
        }
        for event_id, (attempts, error) in failures.items()
    ]
    async with driver_connection(engine) as conn:
        await _FAILED.executemany(conn, params)
    return [
        p["delay"]
        for p, (attempts, _) in zip(params, failures.values(), strict=True)
        if attempts < max_attempts
    ]


async def backlog(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return await conn.scalar(text("SELECT count(*) FROM outbox_events WHERE state = 'pending'"))


async def pending_stats(engine: AsyncEngine) -> tuple[int, float]:
    """(pending rows, age in seconds of the oldest one), by the database clock."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0)"
                    " FROM outbox_events WHERE state = 'pending'"
                )
            )
        ).one()
    return int(row[0]), float(row[1])
