"""A clock a test moves instead of sleeping: hand ``now`` (datetime) or ``unix`` (seconds) to
an app's ``create_app(clock=...)``; a fixture puts ``offset`` back after each test."""

import time
from datetime import UTC, datetime, timedelta

import pytest


class MovableClock:
    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def unix(self) -> float:
        return time.time() + self.offset.total_seconds()


# Fixtures (tests/conftest.py loads this module as a plugin): ``app_clock``, one for the run,
# goes to the apps; ``clock`` is the same clock in a test, put back afterwards.
@pytest.fixture(scope="session")
def app_clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
def clock(app_clock: MovableClock):
    yield app_clock
    app_clock.offset = timedelta(0)
