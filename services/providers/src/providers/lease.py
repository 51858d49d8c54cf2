"""One worker per payment across replicas: a short Redis lock, renewed while its routing runs.

The lock is short so that a worker that dies (``kill -9``, a lost node) holds its payments for
seconds, not minutes: the broker redelivers the unacked message at once, and the new owner can
take the payment when the dead one's lock runs out. A live worker renews its lock every third
of its time, so a routing may take as long as it needs (provider time-outs, a cancel, the
reports). An owner-checked lease: a random token set with ``SET NX PX``, renewed and freed by
scripts that act only while the key still holds that token (compare-and-expire,
compare-and-delete), so a worker never extends or frees another's lock.

Round trips: the caller's first reads go with the acquisition (one MULTI), and what it has to
record at the end goes with the release (one pipeline): ``Lease.read``, ``Lease.release_with``.

Not a PostgreSQL advisory lock: that would hold a pooled connection through every provider
call, doubling the connections each payment in flight needs.
"""

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from payplane_core.scripts import ScriptCall, run_together
from payplane_core.tasks import stop
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

# How long a dead worker's payments wait for a new owner (Redis restarts free them at once).
ROUTING_LOCK_SECONDS = 10.0

# KEYS: the lock. ARGV: the owner's token (and for renewal the lock time in ms).
_RELEASE = AsyncScript(
    None,  # no client of its own: each call names one
    b"""
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
""",
)
_RENEW = AsyncScript(
    None,
    b"""
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
""",
)


class Held(Exception):
    """Another worker routes this payment now."""


class Lease:
    """A payment's routing lock while this worker holds it."""

    def __init__(self, redis: Redis, key: str, token: str, read: list[Any]) -> None:
        self.redis, self.key, self.token = redis, key, token
        self.read = read  # the replies to the reads queued with the acquisition
        self._on_release: list[tuple[ScriptCall, Callable[[Any], Any]]] = []

    def release_with(self, call: ScriptCall, then: Callable[[Any], Any]) -> None:
        """Run ``call`` in the release's round trip (also when the routing fails after this);
        ``then`` gets its result."""
        self._on_release.append((call, then))

    async def renew(self, ms: int) -> bool:
        """Back to its full time, only if still ours."""
        return bool(await _RENEW(keys=[self.key], args=[self.token, ms], client=self.redis))

    async def release(self) -> None:
        """Free it if still ours (lost meanwhile, say a Redis restart: nothing to free)."""
        calls = [ScriptCall(_RELEASE, [self.key], [self.token])]
        calls += [call for call, _ in self._on_release]
        results = await run_together(self.redis, calls)
        for (_, then), result in zip(self._on_release, results[1:], strict=True):
            then(result)


@asynccontextmanager
async def payment_lock(
    redis: Redis,
    payment_id: str,
    *,
    seconds: float = ROUTING_LOCK_SECONDS,
    reads: Callable[[Pipeline], None] | None = None,
) -> AsyncIterator[Lease]:
    """``reads``: queues reads on the acquisition's MULTI (replies in ``Lease.read``)."""
    key, token, ms = f"lock:route:{payment_id}", secrets.token_hex(16), int(seconds * 1000)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(key, token, nx=True, px=ms)
        if reads is not None:
            reads(pipe)
        acquired, *read = await pipe.execute()
    if not acquired:
        raise Held(payment_id)
    lease = Lease(redis, key, token, read)
    renewing = asyncio.create_task(_renew(lease, seconds / 3, ms, payment_id))
    try:
        yield lease
    finally:
        await stop(renewing)  # one cancel is not always enough (payplane_core.tasks)
        await lease.release()


async def _renew(lease: Lease, every: float, ms: int, payment_id: str) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            if not await lease.renew(ms):
                # Gone (Redis restarted, or this loop stalled past the lock's time): the
                # routing's records and the provider's idempotency keep a second worker from
                # charging twice.
                log.warning("routing lock lost", extra={"payment_id": payment_id})
                return
        except RedisError as exc:  # unreachable for a moment: try again at the next beat
            log.warning(
                "routing lock not renewed", extra={"payment_id": payment_id, "error": repr(exc)}
            )
