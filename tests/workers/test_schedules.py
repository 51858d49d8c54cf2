"""The relay's retry backoff and the notifier's delivery state after an attempt (pure)."""

import random

import pytest
from workers.notifier.store import next_state
from workers.relay.outbox import backoff_seconds

SCHEDULE = [5.0, 300.0, 1800.0]


@pytest.mark.parametrize(
    ("attempts_before", "succeeded", "manual", "expected"),
    [
        (0, True, False, ("delivered", None)),
        (3, True, False, ("delivered", None)),  # a late success still delivers
        (0, False, False, ("pending", 5.0)),
        (1, False, False, ("pending", 300.0)),
        (2, False, False, ("pending", 1800.0)),
        (3, False, False, ("failed", None)),  # schedule used up
        (0, False, True, ("failed", None)),  # a manual redelivery is one attempt
        (1, True, True, ("delivered", None)),
    ],
)
def test_next_state(attempts_before, succeeded, manual, expected) -> None:
    assert (
        next_state(
            attempts_before=attempts_before, succeeded=succeeded, manual=manual, schedule=SCHEDULE
        )
        == expected
    )


@pytest.mark.parametrize(
    ("attempts", "delay"), [(0, 1.0), (1, 1.0), (2, 2.0), (4, 8.0), (30, 60.0)]
)
def test_backoff_is_exponential_capped_and_half_jittered(attempts: int, delay: float) -> None:
    random.seed(attempts)
    samples = [backoff_seconds(attempts, base=1.0, cap=60.0) for _ in range(200)]
    assert all(delay / 2 <= s <= delay for s in samples)
    assert max(samples) - min(samples) > delay / 4  # jitter spreads a batch's retries out
