"""One worker per payment across replicas: a short Redis lock, renewed while its routing runs.

The lock is short so that a worker that dies (``kill -9``, a lost node) holds its payments for
seconds, not minutes: the broker redelivers the unacked message at once, and the new owner can
take the payment when the dead one's lock runs out. A live worker renews its lock every third
of its time, so a routing may take as long as it needs (provider time-outs, a cancel, the
reports). redis-py's lock: token-checked renewal and release, so a worker never extends or
frees another's lock.

Not a PostgreSQL advisory lock: that would hold a pooled connection through every provider
call, doubling the connections each payment in flight needs.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import Redis
from redis.asyncio.lock import Lock
from redis.exceptions import LockError, LockNotOwnedError, RedisError

log = logging.getLogger(__name__)

# How long a dead worker's payments wait for a new owner (Redis restarts free them at once).
ROUTING_LOCK_SECONDS = 10.0


class Held(Exception):
    """Another worker routes this payment now."""


@asynccontextmanager
async def payment_lock(
    redis: Redis, payment_id: str, *, seconds: float = ROUTING_LOCK_SECONDS
) -> AsyncIterator[None]:
    lock = redis.lock(f"lock:route:{payment_id}", timeout=seconds, blocking=False)
    if not await lock.acquire():
        raise Held(payment_id)
    renewing = asyncio.create_task(_renew(lock, seconds / 3, payment_id))
    try:
        yield
    finally:
        renewing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewing
        with contextlib.suppress(LockError):  # lost meanwhile (a Redis restart): nothing to free
            await lock.release()


async def _renew(lock: Lock, every: float, payment_id: str) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            await lock.reacquire()  # back to its full time, only if still ours
        except LockNotOwnedError:
            # Gone (Redis restarted, or this loop stalled past the lock's time): the routing's
            # records and the provider's idempotency keep a second worker from charging twice.
            log.warning("routing lock lost", extra={"payment_id": payment_id})
            return
        except RedisError as exc:  # unreachable for a moment: try again at the next beat
            log.warning(
                "routing lock not renewed", extra={"payment_id": payment_id, "error": repr(exc)}
            )
