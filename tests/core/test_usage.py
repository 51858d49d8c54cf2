"""The quota period arithmetic, with the clock passed in."""

from datetime import UTC, datetime, timedelta

import pytest
from payplane_core.usage import current_period, seconds_until_next_period


@pytest.mark.parametrize(
    ("now", "period", "seconds"),
    [
        (datetime(2026, 11, 1, tzinfo=UTC), "2026-11", 30 * 86400 + 1),
        (datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC), "2026-11", 2),
        (datetime(2026, 12, 31, 23, 0, tzinfo=UTC), "2026-12", 3600 + 1),  # year rollover
        (datetime(2028, 2, 28, tzinfo=UTC), "2028-02", 2 * 86400 + 1),  # leap year
    ],
)
def test_period_and_seconds_until_the_next(now: datetime, period: str, seconds: int) -> None:
    assert current_period(now) == period
    assert seconds_until_next_period(now) == seconds


def test_never_less_than_one_second() -> None:
    last_instant = datetime(2027, 1, 1, tzinfo=UTC) - timedelta(microseconds=1)
    assert seconds_until_next_period(last_instant) == 1
