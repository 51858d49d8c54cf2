"""Redis round trips of a routed payment (performance issue 15): the routing lock's acquisition
carries the reads the routing needs first (the merchant's settings version, the first
candidate's breaker state), its release carries the breaker success. Against real Redis."""

import time

import pytest
from payplane_core.breaker import CircuitBreaker
from payplane_core.merchant_version import version_key
from providers import prefetch
from providers.lease import payment_lock
from providers.prefetch import Prefetch
from redis.asyncio import Redis

from tests.support.pipeline import wait_until
from tests.support.redis_trips import round_trips

from .conftest import REDIS_URL
from .test_flow import consumed

DB = 2  # REDIS_URL's


@pytest.fixture
async def own():
    """This module's client (the package's ``redis`` fixture serves the platform)."""
    client = Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    yield client
    await client.aclose()


@pytest.fixture
async def half_open(own):
    """A breaker whose open period is over, waiting for a success (it has a tripped key)."""
    breaker = CircuitBreaker(own, f"p6test:cb:trips:{time.time_ns()}", failure_threshold=1)
    assert await breaker.record_failure()
    await own.delete(breaker.open_key)
    assert (await breaker.state()).half_open
    yield breaker
    await breaker.reset()


async def test_the_lock_carries_the_first_reads_and_its_release_the_success(own, half_open):
    payment_id, merchant_id = f"pay_trips_{time.time_ns()}", f"mer_trips_{time.time_ns()}"
    await own.set(version_key(merchant_id), 7)
    ahead = Prefetch(version_key(merchant_id), [half_open])
    closed: list = []
    with round_trips(DB) as trips:
        async with payment_lock(own, payment_id, reads=ahead.queue) as lease:
            ahead.take(lease.read)
            assert ahead.version == b"7"
            assert (await ahead.state(half_open)).half_open  # as read with the lock
            assert trips == ["MULTI SET GET PTTL EXISTS EXEC"]
            lease.release_with(half_open.success_call(), closed.append)
        assert trips[1:] == ["EVALSHA EVALSHA"]  # the unlock and the success, one round trip
    assert closed == [1]  # the success closed the half-open circuit
    assert not (await half_open.state()).half_open
    assert not await own.exists(f"lock:route:{payment_id}")
    await own.delete(version_key(merchant_id))


async def test_a_state_read_before_a_provider_call_or_long_ago_is_read_again(
    own, half_open, monkeypatch
):
    ahead = Prefetch(None, [half_open])
    async with payment_lock(own, f"pay_stale_{time.time_ns()}", reads=ahead.queue) as lease:
        ahead.take(lease.read)
        await own.set(half_open.open_key, "1", px=5000)  # another replica opened it
        with round_trips(DB) as trips:
            assert not (await ahead.state(half_open)).open  # the snapshot
            assert trips == []
            ahead.provider_called()
            assert (await ahead.state(half_open)).open  # read now
            assert trips == ["MULTI PTTL EXISTS EXEC"]
    ahead = Prefetch(None, [half_open])
    async with payment_lock(own, f"pay_old_{time.time_ns()}", reads=ahead.queue) as lease:
        await own.delete(half_open.open_key)
        ahead.take(lease.read)
        await own.set(half_open.open_key, "1", px=5000)
        monkeypatch.setattr(prefetch, "FRESH_SECONDS", 0.0)  # every snapshot is too old
        assert (await ahead.state(half_open)).open


async def test_the_release_frees_only_its_own_lock_and_still_records_the_success(own, half_open):
    payment_id = f"pay_owner_{time.time_ns()}"
    key = f"lock:route:{payment_id}"
    closed: list = []
    async with payment_lock(own, payment_id) as lease:
        lease.release_with(half_open.success_call(), closed.append)
        await own.set(key, "another-worker", px=5000)  # ours expired, another took it
        assert not await lease.renew(5000)  # not extended either
    assert await own.get(key) == b"another-worker"
    assert closed == [1]
    await own.delete(key)


async def test_a_script_redis_forgot_is_loaded_and_run(own, half_open):
    closed: list = []
    async with payment_lock(own, f"pay_flush_{time.time_ns()}") as lease:
        lease.release_with(half_open.success_call(), closed.append)
        await own.script_flush()  # a Redis restart loses scripts too
    assert closed == [1]
    assert not (await half_open.state()).half_open


async def test_a_routed_payment_costs_two_redis_round_trips(payments, sims):
    """Lock with the breaker read, then unlock with the success (no merchants service here:
    no version to read). Before: lock, breaker, success, unlock."""
    await route_one(payments)  # fills the process's provider cache: the guess needs it
    with round_trips(DB) as trips:
        await route_one(payments)
    assert trips == ["MULTI SET PTTL EXISTS EXEC", "EVALSHA EVALSHA"], trips


async def route_one(payments) -> None:
    routed = consumed("routed")
    payment = await payments.submit(1000)
    await wait_until(lambda: consumed("routed") > routed, within=10, what="the payment routed")
    story = await payments.wait_status(payment["id"], "processing", "succeeded", "failed")
    assert story["events"][1]["detail"]["provider"] == "sim-a"
