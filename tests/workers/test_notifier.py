"""The notifier end to end: payments -> outbox -> relay -> RabbitMQ -> notifier -> receiver.

Real PostgreSQL, RabbitMQ, the real merchants service over HTTP and a real HTTP receiver that
verifies every request with the official ``standardwebhooks`` library.
"""

import json

import aio_pika
import httpx
from prometheus_client import REGISTRY
from sqlalchemy import text
from standardwebhooks import Webhook

from tests.support.internal import GatewayAuth
from tests.support.payments import client_for
from tests.support.pipeline import AMQP_URL, insert_outbox_events, take_all, wait_until


async def create_payment(payments_app, merchant_id: str, amount: int = 1000) -> dict:
    async with client_for(payments_app, merchant_id=merchant_id) as client:
        response = await client.post(
            "/api/v1/payments",
            json={"amount": amount, "currency": "EUR"},
            headers={"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
        )
    assert response.status_code == 201, response.text
    return response.json()


async def states(db) -> dict[str, int]:
    async with db.connect() as conn:
        rows = await conn.execute(text("SELECT state, count(*) FROM deliveries GROUP BY state"))
        return dict(rows.all())


async def has_states(db, expected: dict[str, int]) -> bool:
    return await states(db) == expected


async def attempts(db, webhook_id: str) -> list:
    async with db.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT a.* FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id"
                " WHERE d.event_id = :id ORDER BY a.id"
            ),
            {"id": webhook_id},
        )
        return rows.all()


def api(notifier_app, caller: str = "operator") -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=notifier_app),
        base_url="http://notifier.test",
        auth=GatewayAuth(audience="notifier", caller=caller, scopes=()),
    )


async def test_payment_event_reaches_the_merchant_signed(
    pipeline, payments_app, merchant, receiver, empty_notifier
):
    merchant_id, name = merchant
    await pipeline()
    payment = await create_payment(payments_app, merchant_id, amount=4200)

    await wait_until(lambda: len(receiver.delivered_ids()) >= 1, within=15, what="delivery")
    [hit] = receiver.log
    assert hit.verified and hit.merchant == name
    event = json.loads(hit.body)
    assert event["type"] == "payment.pending"
    assert event["data"]["id"] == payment["id"] and event["data"]["amount"] == 4200
    assert hit.webhook_id.startswith("evt_")

    await wait_until(lambda: has_states(empty_notifier, {"delivered": 1}), within=5, what="row")
    [attempt] = await attempts(empty_notifier, hit.webhook_id)
    assert attempt.succeeded and attempt.status_code == 204 and attempt.trigger == "automatic"
    assert attempt.latency_ms >= 0 and attempt.resulting_state == "delivered"
    async with empty_notifier.connect() as conn:
        trace = await conn.scalar(text("SELECT trace FROM deliveries"))
    assert trace["traceparent"].split("-")[1] == "0af7651916cd43dd8448eb211c80319c"


async def test_during_a_rotations_grace_webhooks_verify_with_the_old_and_new_secret(
    pipeline, payments_app, merchant, receiver, merchants_url
):
    merchant_id, name = merchant
    old_secret = receiver.secrets[name]
    async with httpx.AsyncClient(
        base_url=merchants_url,
        auth=GatewayAuth(audience="merchants", caller="cli", scopes=(), key_id=""),
    ) as admin:
        path = f"/internal/v1/merchants/{merchant_id}/credentials/rotate"
        rotated = await admin.post(path, json={"grace_seconds": 600})
    new_secret = rotated.json()["webhook_secret"]
    await pipeline()
    await create_payment(payments_app, merchant_id)

    await wait_until(lambda: len(receiver.delivered_ids()) >= 1, within=15, what="delivery")
    [hit] = receiver.log
    assert hit.verified  # with the old secret, as the merchant has not switched yet
    Webhook(new_secret).verify(hit.body, hit.headers)  # and with the new one
    assert len(hit.headers["webhook-signature"].split(" ")) == 2
    assert old_secret not in str(hit.headers) and new_secret not in str(hit.headers)


async def test_retries_follow_the_schedule_with_the_same_webhook_id(
    pipeline, outbox_db, merchant, receiver, empty_notifier
):
    merchant_id, name = merchant
    receiver.fail_first[name] = 2  # 500, 500, then 204
    await pipeline(WEBHOOK_RETRY_SCHEDULE_SECONDS="0.4,0.8,5")
    [event_id] = await insert_outbox_events(outbox_db, 1, merchant_id=merchant_id)

    await wait_until(lambda: len(receiver.delivered_ids()) >= 1, within=15, what="delivery")
    hits = receiver.attempts_for(event_id)
    assert [h.status for h in hits] == [500, 500, 204]
    assert all(h.verified for h in hits)
    gaps = [b.at - a.at for a, b in zip(hits, hits[1:], strict=False)]
    # Each wait is the scheduled one, give or take the retry loop's 50 ms poll and the request.
    assert 0.4 <= gaps[0] < 0.4 + 0.5, gaps
    assert 0.8 <= gaps[1] < 0.8 + 0.5, gaps
    await wait_until(lambda: has_states(empty_notifier, {"delivered": 1}), within=5, what="row")
    rows = await attempts(empty_notifier, event_id)
    assert [(r.status_code, r.resulting_state) for r in rows] == [
        (500, "pending"),
        (500, "pending"),
        (204, "delivered"),
    ]
    assert [r.number for r in rows] == [1, 2, 3]


async def test_never_recovering_receiver_ends_failed_then_manual_redelivery(
    pipeline, outbox_db, merchant, receiver, empty_notifier
):
    merchant_id, name = merchant
    receiver.fail_always.add(name)
    notifier = await pipeline(WEBHOOK_RETRY_SCHEDULE_SECONDS="0.1,0.2")
    [event_id] = await insert_outbox_events(outbox_db, 1, merchant_id=merchant_id)

    await wait_until(lambda: has_states(empty_notifier, {"failed": 1}), within=15, what="failed")
    assert [h.status for h in receiver.attempts_for(event_id)] == [500, 500, 500]
    async with api(notifier) as client:
        shown = (await client.get(f"/internal/v1/deliveries/{event_id}")).json()
        assert shown["state"] == "failed" and shown["attempts"] == 3
        assert shown["last_error"] == "HTTP 500" and shown["webhook_id"] == event_id
        assert [a["status_code"] for a in shown["attempt_log"]] == [500, 500, 500]
        listed = (await client.get("/internal/v1/deliveries", params={"state": "failed"})).json()
        assert [d["id"] for d in listed["data"]] == [shown["id"]]

        receiver.fail_always.clear()  # the merchant fixed its endpoint
        redone = await client.post(f"/internal/v1/deliveries/{shown['id']}/redeliver")
    assert redone.status_code == 200, redone.text
    result = redone.json()
    assert result["delivery"]["state"] == "delivered"
    assert result["attempt"]["trigger"] == "manual" and result["attempt"]["status_code"] == 204
    hits = receiver.attempts_for(event_id)
    assert len(hits) == 4 and {h.webhook_id for h in hits} == {event_id}
    assert all(h.verified for h in hits) and receiver.undedupable() == []


async def test_manual_redelivery_that_fails_stays_failed(
    pipeline, outbox_db, merchant, receiver, empty_notifier
):
    merchant_id, name = merchant
    receiver.fail_always.add(name)
    notifier = await pipeline(WEBHOOK_RETRY_SCHEDULE_SECONDS="0.1")
    [event_id] = await insert_outbox_events(outbox_db, 1, merchant_id=merchant_id)
    await wait_until(lambda: has_states(empty_notifier, {"failed": 1}), within=15, what="failed")
    async with api(notifier) as client:
        redone = await client.post(f"/internal/v1/deliveries/{event_id}/redeliver")
    assert redone.status_code == 200
    assert redone.json()["delivery"]["state"] == "failed"
    assert redone.json()["attempt"]["error"] == "HTTP 500"
    # Still failed with nothing scheduled: the retry loop only ever picks pending deliveries.
    async with empty_notifier.connect() as conn:
        state = await conn.scalar(
            text("SELECT state FROM deliveries WHERE event_id = :id"), {"id": event_id}
        )
    assert state == "failed"
    assert len(receiver.attempts_for(event_id)) == 3  # 2 automatic + 1 manual


async def test_redelivery_api_refuses_what_it_must(
    pipeline, outbox_db, merchant, receiver, empty_notifier
):
    merchant_id, name = merchant
    receiver.fail_always.add(name)
    notifier = await pipeline(WEBHOOK_RETRY_SCHEDULE_SECONDS="30")  # stays pending
    [event_id] = await insert_outbox_events(outbox_db, 1, merchant_id=merchant_id)
    await wait_until(lambda: len(receiver.log) >= 1, within=15, what="first attempt")

    async with api(notifier) as client:
        busy = await client.post(f"/internal/v1/deliveries/{event_id}/redeliver")
        assert busy.status_code == 409
        assert busy.json()["type"].endswith("/delivery-busy") and busy.json()["state"] == "pending"
        missing = await client.post("/internal/v1/deliveries/dlv_nope/redeliver")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        too_long = await client.get("/internal/v1/deliveries/" + "x" * 300)
        assert too_long.status_code == 422
        bad_state = await client.get("/internal/v1/deliveries", params={"state": "lost"})
        assert bad_state.status_code == 422
        bad_cursor = await client.get("/internal/v1/deliveries", params={"starting_after": "dlv_x"})
        assert bad_cursor.status_code == 404
    async with api(notifier, caller="gateway") as client:  # not among the notifier's callers
        assert (await client.get("/internal/v1/deliveries")).status_code == 401
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=notifier), base_url="http://notifier.test"
    ) as anonymous:
        refused = await anonymous.post(f"/internal/v1/deliveries/{event_id}/redeliver")
        assert refused.status_code == 401
    assert len(receiver.attempts_for(event_id)) == 1  # nothing above sent anything


async def test_event_already_delivered_is_acked_without_sending_again(
    pipeline, outbox_db, merchant, receiver, empty_notifier, amqp_names
):
    merchant_id, _ = merchant
    await pipeline()
    [event_id] = await insert_outbox_events(outbox_db, 1, merchant_id=merchant_id)
    await wait_until(lambda: len(receiver.delivered_ids()) >= 1, within=15, what="delivery")
    async with outbox_db.connect() as conn:
        body = await conn.scalar(
            text("SELECT payload::text FROM outbox_events WHERE id = :id"), {"id": event_id}
        )
    # The same event published again (as a relay that lost its confirm would).
    before = _duplicates()
    await _publish(amqp_names, event_id, body.encode(), merchant_id)
    await wait_until(lambda: _duplicates() > before, within=10, what="the duplicate consumed")
    assert len(receiver.attempts_for(event_id)) == 1
    assert len(await attempts(empty_notifier, event_id)) == 1


async def test_malformed_message_is_dead_lettered(pipeline, amqp_names, empty_notifier):
    await pipeline()
    await _publish(amqp_names, "evt_garbage", b"not json", "mer_x")
    dead = await wait_until(
        lambda: take_all(amqp_names["DEAD_LETTER_QUEUE"], idle_seconds=0.3), within=10, what="dlq"
    )
    assert [m.message_id for m in dead] == ["evt_garbage"]
    assert await states(empty_notifier) == {}


async def test_unreachable_and_misconfigured_endpoints_are_recorded_as_failures(
    pipeline, outbox_db, merchant, receiver, empty_notifier, merchants_url
):
    merchant_id, name = merchant
    receiver.delay = 1.5  # longer than the timeout below
    await pipeline(WEBHOOK_TIMEOUT_SECONDS="0.5", WEBHOOK_RETRY_SCHEDULE_SECONDS="")
    [slow] = await insert_outbox_events(outbox_db, 1, merchant_id=merchant_id)
    [unknown] = await insert_outbox_events(outbox_db, 1, merchant_id="mer_does_not_exist")
    await wait_until(lambda: has_states(empty_notifier, {"failed": 2}), within=15, what="failed")
    [timed_out] = await attempts(empty_notifier, slow)
    assert timed_out.error == "timed out after 0.5s" and timed_out.status_code is None
    assert 400 <= timed_out.latency_ms < 1500
    [no_merchant] = await attempts(empty_notifier, unknown)
    assert no_merchant.error == "unknown merchant mer_does_not_exist"


async def _publish(names: dict, message_id: str, body: bytes, merchant_id: str) -> None:
    connection = await aio_pika.connect(AMQP_URL, timeout=5)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange(names["AMQP_EXCHANGE"])
        await exchange.publish(
            aio_pika.Message(
                body,
                message_id=message_id,
                headers={"merchant-id": merchant_id},
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key="payment.pending",
        )


def _duplicates() -> float:
    """The notifier runs in this process: its counter of messages acked as already known."""
    return REGISTRY.get_sample_value("payplane_notifier_duplicate_messages_total") or 0.0
