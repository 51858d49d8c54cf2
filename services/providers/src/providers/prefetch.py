"""What routing a payment reads from Redis, read with the routing lock's acquisition.

A routed payment used five Redis round trips: the lock, the merchant's settings version, the
first candidate's breaker state, the breaker success, the unlock. The version and the breaker
states now go in the lock's MULTI (one snapshot, one round trip) and the success with the
unlock (``lease.Lease.release_with``): two round trips.

Which breaker: that of the provider likely to be asked first (``routing.order``, pure) among
those this process last read from the registry (the registry itself is read after the lock,
from the database; the merchant's allowed providers after it too). A candidate whose state was
not read with the lock (the guess was wrong: a registry change, a merchant's restriction, an
open circuit), a state older than ``FRESH_SECONDS``, and every candidate after a provider was
called, are read on their own, as before: a breaker opens on failures that any replica may be
counting meanwhile, so a state is used only about as fresh as reading it just before the first
attempt would be.
"""

import time
from typing import Any

from payplane_core.breaker import BreakerState, CircuitBreaker
from payplane_core.merchant_version import READ_HERE
from redis.asyncio.client import Pipeline

# Between the lock and the first attempt: one SQL read, the merchant's settings when cached.
FRESH_SECONDS = 1.0


class Prefetch:
    def __init__(self, version_key: str | None, breakers: list[CircuitBreaker]) -> None:
        self.version_key = version_key
        self.breakers = breakers
        self.version: Any = READ_HERE  # the merchant's settings version, once read
        self._states: dict[str, BreakerState] = {}
        self._read_at = 0.0

    def queue(self, pipe: Pipeline) -> None:
        """The reads, on the lock's MULTI."""
        if self.version_key is not None:
            pipe.get(self.version_key)
        for breaker in self.breakers:
            breaker.read_state(pipe)

    def take(self, replies: list[Any]) -> None:
        """Their replies, in ``queue``'s order."""
        if self.version_key is not None:
            self.version, *replies = replies
        for index, breaker in enumerate(self.breakers):
            remaining_ms, tripped = replies[2 * index : 2 * index + 2]
            self._states[breaker.name] = breaker.state_from(remaining_ms, tripped)
        self._read_at = time.monotonic()

    async def state(self, breaker: CircuitBreaker) -> BreakerState:
        """``breaker``'s state: as read with the lock while that is fresh, else read now."""
        state = self._states.get(breaker.name)
        if state is None or time.monotonic() - self._read_at > FRESH_SECONDS:
            return await breaker.state()
        return state

    def provider_called(self) -> None:
        """What was read before a provider call is not used after it."""
        self._states.clear()
