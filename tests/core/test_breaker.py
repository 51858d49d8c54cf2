"""The Redis circuit breaker of payplane-core, against real Redis (db 1): closed -> open ->
half-open -> closed (a probe succeeded) or open again, for longer (a probe failed)."""

import asyncio

import pytest
from payplane_core.breaker import CircuitBreaker
from redis.asyncio import Redis

from tests.support.pipeline import wait_until

MIN_OPEN = 0.3
MAX_OPEN = 0.8


@pytest.fixture
async def redis():
    client = Redis.from_url("redis://127.0.0.1:6379/1")
    yield client
    await client.aclose()


@pytest.fixture
async def breaker(redis):
    breaker = CircuitBreaker(
        redis,
        "cb:test-core",
        failure_threshold=3,
        window_seconds=0.5,
        open_seconds=MAX_OPEN,
        min_open_seconds=MIN_OPEN,
    )
    await breaker.reset()
    yield breaker
    await breaker.reset()


async def trip(breaker: CircuitBreaker) -> None:
    for _ in range(breaker.failure_threshold):
        await breaker.record_failure()
    assert (await breaker.state()).open


async def half_open(breaker: CircuitBreaker) -> None:
    async def probing() -> bool:
        return (await breaker.state()).half_open

    await wait_until(probing, within=MAX_OPEN + 1, what="the open period ended (half-open)")


async def test_opens_at_threshold_for_the_short_period_then_half_opens(breaker):
    assert not await breaker.record_failure()
    assert not await breaker.record_failure()
    assert not await breaker.is_open()
    assert await breaker.record_failure()
    state = await breaker.state()
    assert state.open and not state.half_open
    assert 0 < state.retry_after_seconds <= MIN_OPEN and state.retry_after_header == "1"
    assert not await breaker.record_failure()  # already open: late failures change nothing
    assert not await breaker.record_success()  # nor do late successes: it stays open
    assert (await breaker.state()).open
    await half_open(breaker)
    state = await breaker.state()
    assert not state.open and state.retry_after_seconds == 0


async def test_a_probe_success_closes_it(breaker):
    await trip(breaker)
    await half_open(breaker)
    assert await breaker.record_success(clear_failures=False)
    state = await breaker.state()
    assert not state.open and not state.half_open
    assert await breaker.redis.exists(breaker.tripped_key, breaker.probe_key) == 0
    # closed again: it takes a full threshold of failures to open it, not one
    assert not await breaker.record_failure()
    assert not await breaker.is_open()


async def test_a_probe_failure_reopens_it_backing_off_up_to_open_seconds(breaker):
    await trip(breaker)
    await half_open(breaker)
    assert await breaker.record_failure()  # one failure is enough while half-open
    state = await breaker.state()
    assert state.open and MIN_OPEN < state.retry_after_seconds <= 2 * MIN_OPEN
    await half_open(breaker)
    assert await breaker.record_failure()
    state = await breaker.state()
    assert state.open and 2 * MIN_OPEN < state.retry_after_seconds <= MAX_OPEN  # capped
    await half_open(breaker)
    assert await breaker.record_success()
    assert not (await breaker.state()).half_open


async def test_a_half_open_circuit_nobody_probes_closes_after_open_seconds(breaker):
    await trip(breaker)
    await half_open(breaker)

    async def closed() -> bool:
        state = await breaker.state()
        return not state.open and not state.half_open

    await wait_until(closed, within=MAX_OPEN + 1, what="the untested half-open circuit forgot")


async def test_failures_outside_the_window_do_not_add_up(breaker):
    await breaker.record_failure()
    await breaker.record_failure()

    async def window_over() -> bool:  # the window is the failure count's Redis TTL
        return not await breaker.redis.exists(breaker.failures_key)

    await wait_until(window_over, within=2, what="the failure window ended")
    assert not await breaker.record_failure()
    assert not await breaker.is_open()


async def test_success_clears_the_count_unless_told_not_to(breaker):
    await breaker.record_failure()
    await breaker.record_success(clear_failures=False)
    await breaker.record_failure()
    await breaker.record_success()
    assert not await breaker.record_failure()
    assert not await breaker.record_failure()
    assert not await breaker.is_open()


async def test_concurrent_failures_open_it_exactly_once(breaker):
    opened = await asyncio.gather(*(breaker.record_failure() for _ in range(20)))
    assert opened.count(True) == 1
    await half_open(breaker)
    reopened = await asyncio.gather(*(breaker.record_failure() for _ in range(20)))
    assert reopened.count(True) == 1


def test_rejects_nonsense_settings(redis):
    with pytest.raises(ValueError):
        CircuitBreaker(redis, "x", failure_threshold=0)
    with pytest.raises(ValueError):
        CircuitBreaker(redis, "x", open_seconds=1, min_open_seconds=2)
