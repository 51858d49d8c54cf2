"""A merchant's settings version in Redis: how a cache of merchant settings learns of a change.

The merchants service bumps it after committing a change to a merchant. A cache (the providers
service's allowed providers) keeps what it fetched together with the version it read *before*
fetching, and uses an entry only while the version is still the same: a change reaches the next
payment, not the cache's expiry. Only if Redis cannot be written (the change itself still
holds) does the cache's own expiry bound the delay, as with the gateway's key cache.
"""

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)
T = TypeVar("T")


def version_key(merchant_id: str) -> str:
    return f"merchant:version:{merchant_id}"


async def bump(redis: Redis, merchant_id: str) -> None:
    """After the commit: every cached copy of this merchant's settings is now out of date."""
    try:
        await redis.incr(version_key(merchant_id))
    except Exception as exc:  # noqa: BLE001 - the database change is what matters
        log.warning(
            "could not bump the merchant's version",
            extra={"merchant_id": merchant_id, "error": repr(exc)},
        )


_UNKNOWN: Any = object()  # the version could not be read: nothing cached is trusted
READ_HERE: Any = object()  # get's version when the caller did not read it


class VersionedCache(Generic[T]):
    """Per merchant: the value ``fetch`` gave, used while the merchant's version is the one
    read before that fetch (and for at most ``seconds``). Without Redis (``redis=None``, or
    unreachable) every call fetches: never a stale answer, only a slower one."""

    def __init__(self, redis: Redis | None, *, seconds: float, max_entries: int = 10_000) -> None:
        self.redis = redis
        self.seconds = seconds
        self.max_entries = max_entries
        self._entries: dict[str, tuple[Any, float, T]] = {}

    async def get(
        self,
        merchant_id: str,
        fetch: Callable[[], Awaitable[T]],
        keep: Callable[[T], bool] = lambda _: True,
        version: Any = READ_HERE,
    ) -> T:
        """``version``: the reply to a GET of ``version_key`` that the caller made itself (in a
        round trip it makes anyway), before this call; by default it is read here."""
        if version is READ_HERE:
            version = await self._version(merchant_id)
        entry = self._entries.get(merchant_id)
        if (
            entry is not None
            and version is not _UNKNOWN
            and entry[0] == version
            and entry[1] > time.monotonic()
        ):
            return entry[2]
        value = await fetch()
        if version is not _UNKNOWN and keep(value):
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[merchant_id] = (version, time.monotonic() + self.seconds, value)
        return value

    def version_key(self, merchant_id: str) -> str | None:
        """The key to read for ``get``'s ``version``; None without Redis (nothing to read)."""
        return None if self.redis is None else version_key(merchant_id)

    async def _version(self, merchant_id: str) -> Any:
        if self.redis is None:
            return _UNKNOWN
        try:
            return await self.redis.get(version_key(merchant_id))
        except (RedisError, OSError):
            return _UNKNOWN
