"""Settling the monthly payment quota the gateway reserved.

Where usage lives, and why (see docs/hardening.md):
- The gateway reserves one unit in Redis (``quota:<merchant>:<period>``) in the same atomic
  script as rate limit and nonce, so concurrent creates can never overshoot the quota.
- PostgreSQL is the durable count: the statement that inserts a payment also increments
  ``monthly_usage`` (payments.service), so usage equals the payments that exist.
- Here, after the response, a reservation that did not become a payment (a replay, a refused
  or failed request) is given back, and a new payment raises the Redis counter to at least the
  PostgreSQL count: after a Redis restart the counter heals on the merchant's next create, and
  at startup every counter of the month is raised to its PostgreSQL value.
"""

import logging

from payplane_core.usage import current_period, quota_counter_key
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from payments.models import MonthlyUsage

log = logging.getLogger(__name__)

QUOTA_KEEP_SECONDS = 40 * 86400  # as the gateway: a month's counter outlives the month
STATE_KEY = "quota_reserved_by"  # request.state: the merchant whose reservation is pending

# KEYS: counter. ARGV: at least, ttl seconds.
_RAISE_TO = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) end
return 0
"""
# KEYS: counter. Never below zero (the counter may have been lost and rebuilt meanwhile).
_RELEASE = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current > 0 then redis.call('DECR', KEYS[1]) end
return 0
"""


class QuotaLedger:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._raise_to = redis.register_script(_RAISE_TO)
        self._release = redis.register_script(_RELEASE)

    async def counted(self, merchant_id: str, used: int, period: str | None = None) -> None:
        """A payment was created: the counter is at least PostgreSQL's count."""
        key = quota_counter_key(merchant_id, period or current_period())
        await self._best_effort(self._raise_to(keys=[key], args=[used, QUOTA_KEEP_SECONDS]))

    async def release(self, merchant_id: str) -> None:
        """The reserved unit did not become a payment: give it back."""
        key = quota_counter_key(merchant_id, current_period())
        await self._best_effort(self._release(keys=[key]))

    async def rebuild(self, engine: AsyncEngine, period: str | None = None) -> int:
        """Raise every counter of ``period`` to its PostgreSQL count; returns how many."""
        period = period or current_period()
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(MonthlyUsage.merchant_id, MonthlyUsage.payments).where(
                        MonthlyUsage.period == period
                    )
                )
            ).all()
        for merchant_id, used in rows:
            await self.counted(merchant_id, used, period)
        return len(rows)

    async def _best_effort(self, call) -> None:
        try:
            await call
        except RedisError as exc:  # the gateway fails closed while Redis is down anyway
            log.warning("quota counter not updated", extra={"error": type(exc).__name__})


class QuotaSettlement:
    """ASGI middleware on ``POST /api/v1/payments``: gives back the gateway's reservation
    unless the request created a payment (201 and not ``Idempotent-Replayed``). The create
    route marks the request with its merchant first thing, so even a refused body settles."""

    def __init__(self, app, *, ledger: QuotaLedger, path: str = "/api/v1/payments") -> None:
        self.app = app
        self.ledger = ledger
        self.path = path

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        counted = False

        async def watch(message) -> None:
            nonlocal counted
            if message["type"] == "http.response.start":
                replayed = any(k.lower() == b"idempotent-replayed" for k, _ in message["headers"])
                counted = message["status"] == 201 and not replayed
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            merchant_id = scope.get("state", {}).get(STATE_KEY)
            if merchant_id and not counted:
                await self.ledger.release(merchant_id)
