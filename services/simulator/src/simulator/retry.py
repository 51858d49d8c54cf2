"""How a real provider retries a callback the platform did not accept: exponential backoff with
jitter, for hours, at least as long as the platform's ``Retry-After`` asks, never a tight loop.

Pure functions (the random source and the clock are the caller's), so the policy is testable.
"""

import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds: delay-seconds or an HTTP-date (RFC 9110 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        at = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return max(0.0, (at - (now or datetime.now(UTC))).total_seconds())


def backoff_delay(
    attempt: int,
    *,
    base: float,
    cap: float,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait after failed ``attempt`` (1-based).

    Equal jitter: half of the exponential step is fixed, half random, so replicas spread out
    and no wait is ever shorter than ``base / 2``. A ``Retry-After`` from the platform is a
    floor (capped like everything else, so a hostile header cannot park us for ever), with
    its own jitter on top so every waiting sender does not come back in the same second.
    """
    rng = rng or random.Random()  # noqa: S311 - jitter, not security
    step = min(cap, base * 2 ** min(attempt - 1, 62))
    delay = step / 2 + rng.uniform(0, step / 2)
    if retry_after is not None:
        floor = min(cap, retry_after)
        delay = max(delay, floor + rng.uniform(0, max(base, floor * 0.1)))
    return delay
