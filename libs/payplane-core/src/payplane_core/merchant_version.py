"""A merchant's settings version in Redis: how a cache of merchant settings learns of a change.

The merchants service bumps it after committing a change to a merchant. A cache (the providers
service's allowed providers) keeps what it fetched together with the version it read *before*
fetching, and uses an entry only while the version is still the same: a change reaches the next
payment, not the cache's expiry. Only if Redis cannot be written (the change itself still
holds) does the cache's own expiry bound the delay, as with the gateway's key cache.
"""

import logging

from redis.asyncio import Redis

log = logging.getLogger(__name__)


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
