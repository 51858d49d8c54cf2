"""Monthly plan usage counters in Redis: the gateway increments them, merchants reports them."""

from datetime import UTC, datetime


def current_period(now: datetime | None = None) -> str:
    """The calendar month (UTC) a quota counts in, e.g. ``2026-11``."""
    return (now or datetime.now(UTC)).strftime("%Y-%m")


def seconds_until_next_period(now: datetime | None = None) -> int:
    now = now or datetime.now(UTC)
    year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
    start = datetime(year, month, 1, tzinfo=UTC)
    return max(1, int((start - now).total_seconds()) + 1)


def quota_counter_key(merchant_id: str, period: str) -> str:
    return f"quota:{merchant_id}:{period}"
