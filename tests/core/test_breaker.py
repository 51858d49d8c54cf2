"""The Redis circuit breaker of payplane-core, against real Redis (db 1)."""

import asyncio

import pytest
from payplane_core.breaker import CircuitBreaker
from redis.asyncio import Redis


@pytest.fixture
async def redis():
    client = Redis.from_url("redis://127.0.0.1:6379/1")
    yield client
    await client.aclose()


@pytest.fixture
async def breaker(redis):
    breaker = CircuitBreaker(
        redis, "cb:test-core", failure_threshold=3, window_seconds=0.5, open_seconds=0.5
    )
    await breaker.reset()
    yield breaker
    await breaker.reset()


async def test_opens_at_threshold_and_closes_by_ttl(breaker):
    assert not await breaker.record_failure()
    assert not await breaker.record_failure()
    assert not await breaker.is_open()
    assert await breaker.record_failure()
    state = await breaker.state()
    assert state.open and 0 < state.retry_after_seconds <= 0.5 and state.retry_after_header == "1"
    assert not await breaker.record_failure()  # already open: not "opened" again
    await asyncio.sleep(0.55)
    assert not await breaker.is_open()


async def test_failures_outside_the_window_do_not_add_up(breaker):
    await breaker.record_failure()
    await breaker.record_failure()
    await asyncio.sleep(0.55)
    assert not await breaker.record_failure()
    assert not await breaker.is_open()


async def test_success_clears_the_count(breaker):
    await breaker.record_failure()
    await breaker.record_failure()
    await breaker.record_success()
    assert not await breaker.record_failure()
    assert not await breaker.is_open()


async def test_concurrent_failures_open_it_exactly_once(breaker):
    opened = await asyncio.gather(*(breaker.record_failure() for _ in range(20)))
    assert opened.count(True) == 1


def test_rejects_nonsense_settings(redis):
    with pytest.raises(ValueError):
        CircuitBreaker(redis, "x", failure_threshold=0)
