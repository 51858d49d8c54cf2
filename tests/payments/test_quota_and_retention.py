"""Quota usage (counted once per created payment, durable in PostgreSQL, Redis healed from it)
and retention (batched, concurrent-safe, driven by an injected clock)."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from payments.core.config import Settings
from payments.main import create_app, retention_rules
from payplane_core.ids import new_id
from payplane_core.retention import purge_all
from payplane_core.usage import current_period, quota_counter_key
from redis.asyncio import Redis
from sqlalchemy import text

from tests.support.internal import internal
from tests.support.payments import client_for

REDIS_URL = "redis://127.0.0.1:6379/1"
BODY = {"amount": 700, "currency": "EUR"}


@pytest.fixture
async def redis():
    client = Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


@pytest.fixture
async def quota_app(db_url):
    app = create_app(
        Settings(
            DATABASE_URL=db_url,
            RECONCILE_ENABLED=False,
            **internal("payments"),
            REDIS_URL=REDIS_URL,
        )
    )
    async with app.router.lifespan_context(app):
        yield app


async def usage(db, merchant_id: str) -> int:
    async with db.connect() as conn:
        value = await conn.scalar(
            text("SELECT payments FROM monthly_usage WHERE merchant_id = :m AND period = :p"),
            {"m": merchant_id, "p": current_period()},
        )
    return value or 0


async def test_only_created_payments_count(quota_app, db, redis):
    merchant_id = new_id("mer")
    counter = quota_counter_key(merchant_id, current_period())

    async def create(client, body, **headers):
        await redis.incr(counter)  # the gateway's reservation, as its admission script makes
        return await client.post("/api/v1/payments", json=body, headers=headers)

    async with client_for(quota_app, merchant_id=merchant_id) as client:
        assert (await create(client, BODY, **{"Idempotency-Key": "k1"})).status_code == 201
        replay = await create(client, BODY, **{"Idempotency-Key": "k1"})
        assert replay.headers["idempotent-replayed"] == "true"
        assert (await create(client, {"amount": -1, "currency": "EUR"})).status_code == 422
        assert (await create(client, {**BODY, "description": "x\x00"})).status_code == 422
        assert (await create(client, BODY)).status_code == 201
    assert await usage(db, merchant_id) == 2
    assert int(await redis.get(counter)) == 2


async def test_redis_counters_are_rebuilt_from_postgresql(db_url, db, redis):
    merchant_id = new_id("mer")
    counter = quota_counter_key(merchant_id, current_period())
    settings = Settings(
        DATABASE_URL=db_url, RECONCILE_ENABLED=False, **internal("payments"), REDIS_URL=REDIS_URL
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app), client_for(app, merchant_id=merchant_id) as c:
        for _ in range(3):
            assert (await c.post("/api/v1/payments", json=BODY)).status_code == 201
    await redis.delete(counter)  # Redis lost its data (restart without persistence)
    restarted = create_app(settings)
    async with restarted.router.lifespan_context(restarted):
        assert int(await redis.get(counter)) == 3 == await usage(db, merchant_id)


async def insert_expiring(db, merchant_id: str, n: int, at: datetime) -> None:
    async with db.begin() as conn:
        for i in range(n):
            await conn.execute(
                text(
                    "INSERT INTO idempotency_keys (merchant_id, key, fingerprint, state, "
                    "created_at, locked_until, expires_at) VALUES (:m, :k, 'f', 'completed', "
                    ":at, :at, :exp)"
                ),
                {"m": merchant_id, "k": f"k{i}", "at": at, "exp": at + timedelta(hours=24)},
            )
            await conn.execute(
                text(
                    "INSERT INTO outbox_events (id, payment_id, merchant_id, event_type, "
                    "routing_key, payload, headers, state, attempts, next_retry_at, created_at, "
                    "published_at) VALUES (:id, 'pay_x', :m, 'payment.pending', "
                    "'payment.pending', '{}', '{}', :state, 1, :at, :at, :published)"
                ),
                {
                    "id": new_id("evt"),
                    "m": merchant_id,
                    "at": at,
                    "state": "published" if i % 2 == 0 else "pending",
                    "published": at if i % 2 == 0 else None,
                },
            )


async def remaining(db, merchant_id: str) -> tuple[int, int, int]:
    async with db.connect() as conn:
        keys = await conn.scalar(
            text("SELECT count(*) FROM idempotency_keys WHERE merchant_id = :m"), {"m": merchant_id}
        )
        published = await conn.scalar(
            text(
                "SELECT count(*) FROM outbox_events WHERE merchant_id = :m AND state = 'published'"
            ),
            {"m": merchant_id},
        )
        pending = await conn.scalar(
            text("SELECT count(*) FROM outbox_events WHERE merchant_id = :m AND state = 'pending'"),
            {"m": merchant_id},
        )
    return keys, published, pending


async def test_retention_with_an_injected_clock_and_concurrent_purgers(db_url, db):
    merchant_id = new_id("mer")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    await insert_expiring(db, merchant_id, 50, start)  # 50 keys, 25 published, 25 pending
    rules = retention_rules(
        Settings(
            DATABASE_URL=db_url,
            RECONCILE_ENABLED=False,
            **internal("payments"),
            OUTBOX_RETENTION_HOURS=48,
        )
    )

    await purge_all(db, rules, now=lambda: start + timedelta(hours=23), batch=7)
    assert await remaining(db, merchant_id) == (50, 25, 25)  # nothing expired yet

    # Keys expire after 24 h; published events are kept 48 h. Three replicas purge at once.
    day_later = start + timedelta(hours=25)
    results = await asyncio.gather(
        *(purge_all(db, rules, now=lambda: day_later, batch=7) for _ in range(3))
    )
    assert sum(r["idempotency_keys"] for r in results) >= 50  # other tests' old keys too
    assert await remaining(db, merchant_id) == (0, 25, 25)

    await purge_all(db, rules, now=lambda: start + timedelta(hours=49), batch=7)
    assert await remaining(db, merchant_id) == (0, 0, 25)  # never a pending event
