"""The wall clock, as a value: code that stamps or expires things takes a ``Clock`` so a test
can hand it a fixed or moving time instead of sleeping."""

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)
