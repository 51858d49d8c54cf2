"""Retention: old rows deleted in small batches by the service that owns the table.

Each batch is one statement that picks its rows with ``FOR UPDATE SKIP LOCKED``: several
replicas purging at once take different rows (no double work, no waiting), and no batch holds
locks for long. The clock is passed in, so expiry is tested without waiting.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from prometheus_client import Counter
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from payplane_core.clock import Clock, utc_now
from payplane_core.db import autocommit

log = logging.getLogger(__name__)

PURGED = Counter("payplane_retention_purged_rows_total", "Rows deleted by retention", ["table"])


@dataclass(frozen=True)
class Retention:
    """Rows of ``table`` matching ``condition`` whose ``column`` is older than ``keep``.

    ``condition`` is trusted SQL from the service's own code (never from a request).
    """

    table: str
    column: str
    keep: timedelta
    condition: str = "TRUE"


async def purge(
    engine: AsyncEngine, rule: Retention, *, now: Clock = utc_now, batch: int = 1000
) -> int:
    """Delete every expired row, ``batch`` at a time; returns how many were deleted."""
    statement = text(
        f"DELETE FROM {rule.table} WHERE ctid = ANY(ARRAY("  # noqa: S608 - trusted names
        f"SELECT ctid FROM {rule.table} WHERE ({rule.condition}) AND {rule.column} < :cutoff "
        "LIMIT :batch FOR UPDATE SKIP LOCKED))"
    )
    cutoff = now() - rule.keep
    total = 0
    async with autocommit(engine) as conn:
        while True:
            deleted = (await conn.execute(statement, {"cutoff": cutoff, "batch": batch})).rowcount
            total += deleted
            if deleted < batch:
                break
    if total:
        PURGED.labels(rule.table).inc(total)
        log.info("retention purged rows", extra={"table": rule.table, "rows": total})
    return total


async def purge_all(
    engine: AsyncEngine, rules: Sequence[Retention], *, now: Clock = utc_now, batch: int = 1000
) -> dict[str, int]:
    return {rule.table: await purge(engine, rule, now=now, batch=batch) for rule in rules}


async def every(seconds: float, job: Callable[[], Awaitable[object]]) -> None:
    """Run ``job`` now and then every ``seconds`` until cancelled; a failed run is logged and
    the next one tries again (a database restart must not end retention for good)."""
    while True:
        try:
            await job()
        except Exception as exc:  # noqa: BLE001 - keep the schedule alive
            log.warning("periodic job failed", extra={"error": repr(exc)})
        await asyncio.sleep(seconds)
