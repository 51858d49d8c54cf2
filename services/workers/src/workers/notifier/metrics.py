"""Delivery saturation and lag: what an SRE watches to know merchants hear about payments."""

import json
from datetime import UTC, datetime

from prometheus_client import Gauge, Histogram
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from workers.notifier.models import Delivery

DELIVERIES = Gauge(
    "payplane_webhook_deliveries", "Deliveries waiting (pending) or given up (failed)", ["state"]
)
LAG = Histogram(
    "payplane_webhook_delivery_lag_seconds",
    "From the event's commit to the merchant's verified 2xx",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200),
)
_COUNTS = text(
    "SELECT state, count(*) FROM deliveries WHERE state IN ('pending', 'failed') GROUP BY state"
)


async def refresh(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        counts = dict((await conn.execute(_COUNTS)).all())
    for state in ("pending", "failed"):
        DELIVERIES.labels(state).set(counts.get(state, 0))


def delivered(delivery: Delivery, exemplar: dict[str, str] | None) -> None:
    """A 2xx: the lag since the event's own timestamp (its commit, written by payments)."""
    try:
        stamp = json.loads(delivery.body)["timestamp"]
        committed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except (ValueError, KeyError, TypeError, AttributeError):
        return
    LAG.observe((datetime.now(UTC) - committed).total_seconds(), exemplar=exemplar)
