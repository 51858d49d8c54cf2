"""The routing lock (``providers.lease``) against real Redis: a live worker keeps its payment as
long as its routing runs; a worker killed with ``kill -9`` holds it only for the lock's short
time, not for minutes (found by tests/load/test_faults.py: a killed providers process left its
payments pending for the old 300 s lock)."""

import asyncio
import os
import signal
import sys
import time
from asyncio.subprocess import PIPE

import pytest
from providers.lease import ROUTING_LOCK_SECONDS, Held, Lease, payment_lock
from redis.asyncio import Redis

from tests.providers.conftest import REDIS_URL

SHORT = 1.0  # seconds: each test's lock time (a loaded event loop may stall for a few tenths)


@pytest.fixture
async def redis():
    """Its own client, every command bounded: once in CI a lock test waited 120 s on the
    package's shared client (not reproduced since); a stuck read now fails or is retried in
    seconds instead."""
    client = Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    yield client
    await client.aclose()


async def held_by_someone(redis, payment_id: str) -> bool:
    try:
        async with payment_lock(redis, payment_id, seconds=SHORT):
            return False
    except Held:
        return True


async def held_throughout(redis, payment_id: str, seconds: float) -> None:
    """Checked every quarter lock time for ``seconds`` (several lock times: renewed)."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        assert await held_by_someone(redis, payment_id)
        await asyncio.sleep(SHORT / 4)


async def test_a_live_worker_keeps_its_payment_past_the_lock_time(redis):
    payment_id = f"pay_live_{time.time_ns()}"
    async with payment_lock(redis, payment_id, seconds=SHORT):
        await held_throughout(redis, payment_id, 2 * SHORT)
    assert not await held_by_someone(redis, payment_id)  # released on the way out


async def test_a_renewal_that_swallows_the_cancel_still_ends(redis, monkeypatch):
    """Python 3.11's ``asyncio.wait_for`` (around each of redis-py's sends, with a socket
    timeout) returns its result instead of raising when the cancel arrives as the send finishes.
    Here every renewal does that: the routing must still end, and free its lock."""
    renew, sending, swallowed = Lease.renew, asyncio.Event(), asyncio.Event()

    async def renew_swallowing_the_cancel(self, ms):
        sending.set()
        try:
            await asyncio.Event().wait()  # the send, still running when the routing ends
        except asyncio.CancelledError:
            swallowed.set()
        return await renew(self, ms)

    monkeypatch.setattr(Lease, "renew", renew_swallowing_the_cancel)
    payment_id = f"pay_swallow_{time.time_ns()}"
    async with asyncio.timeout(5 * SHORT):
        async with payment_lock(redis, payment_id, seconds=SHORT):
            await sending.wait()  # a renewal is under way as the routing ends
    assert swallowed.is_set()
    assert not await held_by_someone(redis, payment_id)


HOLDER = """
import asyncio, sys
from redis.asyncio import Redis
from providers.lease import payment_lock

async def main():
    async with payment_lock(Redis.from_url(sys.argv[1]), sys.argv[2], seconds=float(sys.argv[3])):
        print("held", flush=True)
        await asyncio.Event().wait()

asyncio.run(main())
"""


async def test_a_killed_worker_holds_its_payment_only_for_the_lock_time(redis):
    payment_id = f"pay_killed_{time.time_ns()}"
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOLDER, REDIS_URL, payment_id, str(SHORT), stdout=PIPE
    )
    try:
        assert (await holder.stdout.readline()).strip() == b"held"
        await held_throughout(redis, payment_id, 1.5 * SHORT)  # it renews while alive...
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        await holder.wait()
    killed = time.monotonic()
    # ...and nobody renews it once dead.
    while await held_by_someone(redis, payment_id):  # noqa: ASYNC110 - another process's lock
        assert time.monotonic() - killed <= SHORT + 0.5, "a dead worker's lock outlived its time"
        await asyncio.sleep(0.02)


def test_the_default_lock_time_is_seconds_not_minutes():
    # A dead worker's payments wait this long; the reconciler reroutes pending payments later.
    assert ROUTING_LOCK_SECONDS <= 15
