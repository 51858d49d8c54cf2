"""Idempotency-Key semantics (IETF draft) on a real database, including races."""

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from tests.support.payments import count

BODY = {"amount": 5000, "currency": "USD", "description": "idempotent"}


async def post(client, key, body=BODY):
    return await client.post("/api/v1/payments", json=body, headers={"Idempotency-Key": key})


async def test_same_key_same_body_replays_the_first_response(client, db, merchant_id):
    first = await post(client, "order-1")
    second = await post(client, "order-1", dict(reversed(BODY.items())))  # key order is irrelevant
    assert first.status_code == second.status_code == 201
    assert "idempotent-replayed" not in first.headers
    assert second.headers["idempotent-replayed"] == "true"
    assert second.content == first.content  # byte-identical replay
    assert await count(db, "payments", merchant_id) == 1
    assert await count(db, "outbox_events", merchant_id) == 1


async def test_same_key_other_body_is_422(client, db, merchant_id):
    assert (await post(client, "order-2")).status_code == 201
    reused = await post(client, "order-2", BODY | {"amount": 5001})
    assert reused.status_code == 422
    assert reused.json()["type"].endswith("/idempotency-key-reused")
    assert await count(db, "payments", merchant_id) == 1


async def test_keys_are_scoped_per_merchant(app, client, db):
    from payplane_core.ids import new_id

    from tests.support.payments import client_for

    mine = await post(client, "shared-key")
    async with client_for(app, merchant_id=new_id("mer")) as other:
        theirs = await post(other, "shared-key")
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]
    assert "idempotent-replayed" not in theirs.headers


async def test_in_flight_key_is_409_then_replays(client, db, merchant_id):
    # Hold a lock that the first request's INSERT must wait for: it stays in flight, for real.
    async with db.connect() as blocker:
        await blocker.execute(text("BEGIN"))
        await blocker.execute(text("LOCK TABLE payments IN EXCLUSIVE MODE"))
        first = asyncio.create_task(post(client, "slow-1"))
        for _ in range(100):  # until the first request has claimed its key
            if await count(db, "idempotency_keys", merchant_id):
                break
            await asyncio.sleep(0.02)
        concurrent = await post(client, "slow-1")
        assert concurrent.status_code == 409
        assert concurrent.headers["retry-after"]
        assert concurrent.json()["type"].endswith("/idempotency-key-in-flight")
        await blocker.execute(text("ROLLBACK"))
    assert (await first).status_code == 201
    replay = await post(client, "slow-1")
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["id"] == (await first).json()["id"]


async def test_twenty_concurrent_identical_requests_make_one_payment(client, db, merchant_id):
    responses = await asyncio.gather(*(post(client, "race-1") for _ in range(20)))
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {201, 409}, statuses
    created = {r.json()["id"] for r in responses if r.status_code == 201}
    assert len(created) == 1
    assert await count(db, "payments", merchant_id) == 1
    assert await count(db, "outbox_events", merchant_id) == 1


async def test_expired_key_can_be_used_again(client, clock, merchant_id):
    first = await post(client, "old-key")
    clock.offset = timedelta(hours=23, minutes=59)
    assert (await post(client, "old-key", BODY | {"amount": 1})).status_code == 422  # still kept
    clock.offset = timedelta(hours=24, seconds=1)
    again = await post(client, "old-key", BODY | {"amount": 1})
    assert again.status_code == 201
    assert again.json()["id"] != first.json()["id"]


async def test_keys_are_kept_at_least_24_hours(client, db, merchant_id):
    await post(client, "kept")
    async with db.connect() as conn:
        kept_for = await conn.scalar(
            text("SELECT expires_at - created_at FROM idempotency_keys WHERE merchant_id = :m"),
            {"m": merchant_id},
        )
    assert kept_for >= timedelta(hours=24)


async def test_a_request_that_died_in_flight_is_taken_over_after_its_lock(client, db, merchant_id):
    async with db.begin() as conn:
        now = datetime.now(UTC)
        await conn.execute(
            text(
                "INSERT INTO idempotency_keys (merchant_id, key, fingerprint, state, created_at,"
                " locked_until, expires_at) VALUES (:m, 'crashed', 'x', 'in_flight', :n, :l, :e)"
            ),
            {"m": merchant_id, "n": now, "l": now - timedelta(seconds=1), "e": now + timedelta(1)},
        )
    assert (await post(client, "crashed")).status_code == 201


async def test_bad_idempotency_key_is_400(client, db, merchant_id):
    response = await post(client, "x" * 256)
    assert response.status_code == 400
    assert await count(db, "payments", merchant_id) == 0
