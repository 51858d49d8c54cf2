"""The relay against real PostgreSQL (the payments schema) and RabbitMQ."""

import asyncio
import contextlib
import logging

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import text
from workers.relay import outbox
from workers.relay.config import RelaySettings
from workers.relay.main import create_app
from workers.relay.publisher import Relay

from tests.support.payments import client_for
from tests.support.pipeline import (
    duplicates,
    insert_outbox_events,
    outbox_states,
    queue_depth,
    take_all,
    wait_until,
)


def relay_settings(url: str, names: dict[str, str], **overrides) -> RelaySettings:
    # Notifications wake the relay; its fallback poll (often, here) picks up expired leases.
    defaults = {"RELAY_FALLBACK_POLL_SECONDS": 0.5, "RELAY_LEASE_SECONDS": 2}
    return RelaySettings(OUTBOX_DATABASE_URL=url, **names, **(defaults | overrides))


@contextlib.asynccontextmanager
async def running(*relays: Relay):
    tasks = [asyncio.create_task(r.run()) for r in relays]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def published(engine, expected: int) -> bool:
    return (await outbox_states(engine)).get("published", 0) == expected


async def test_payment_events_published_persistently_with_trace_context(
    empty_outbox, outbox_url, payments_app, amqp_names
):
    async with client_for(payments_app, merchant_id="mer_relay") as merchant:
        created = await merchant.post(
            "/api/v1/payments",
            json={"amount": 1250, "currency": "EUR"},
            headers={
                "x-request-id": "req-relay-1",
                "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            },
        )
    assert created.status_code == 201, created.text
    payment = created.json()
    async with client_for(payments_app, caller="providers") as internal:
        moved = await internal.post(
            f"/internal/v1/payments/{payment['id']}/events",
            json={"type": "provider.accepted", "status": "processing", "source": "test"},
        )
    assert moved.status_code == 200, moved.text

    relay = Relay(relay_settings(outbox_url, amqp_names), create_async_engine_for(outbox_url))
    async with running(relay):
        await wait_until(lambda: published(empty_outbox, 2), within=10, what="2 published")
    await relay.engine.dispose()

    messages = await take_all(amqp_names["NOTIFIER_QUEUE"])
    assert [m.routing_key for m in messages] == ["payment.pending", "payment.processing"]
    async with empty_outbox.connect() as conn:
        ids = list(await conn.scalars(text("SELECT id FROM outbox_events ORDER BY created_at")))
    first = messages[0]
    assert [m.message_id for m in messages] == ids
    assert first.delivery_mode == 2  # persistent
    assert first.content_type == "application/json"
    assert first.headers["x-request-id"] == "req-relay-1"
    # Tracing is off in this process: the caller's context passes through the outbox row and
    # the relay unchanged (tests/observability proves the spans each hop adds when it is on).
    trace = first.headers["traceparent"].split("-")
    assert trace[1] == "4bf92f3577b34da6a3ce929d0e0e4736"  # same trace
    body = httpx.Response(200, content=first.body).json()
    assert body["type"] == "payment.pending"
    assert body["data"]["id"] == payment["id"] and body["data"]["amount"] == 1250


def create_async_engine_for(url: str):
    from payplane_core.db import create_engine

    return create_engine(url, pool_size=2)


async def test_two_relays_publish_each_event_once(empty_outbox, outbox_url, amqp_names):
    ids = await insert_outbox_events(empty_outbox, 1000)
    settings = relay_settings(outbox_url, amqp_names, RELAY_BATCH_SIZE=50)
    relays = [Relay(settings, create_async_engine_for(outbox_url)) for _ in range(2)]
    async with running(*relays):
        await wait_until(lambda: published(empty_outbox, 1000), within=30, what="1000 published")
    for relay in relays:
        await relay.engine.dispose()

    assert await queue_depth(amqp_names["NOTIFIER_QUEUE"]) == 1000
    messages = await take_all(amqp_names["NOTIFIER_QUEUE"])
    assert len(messages) == 1000
    assert duplicates(messages) == {}
    assert {m.message_id for m in messages} == set(ids)
    async with empty_outbox.connect() as conn:
        attempts = await conn.scalar(text("SELECT max(attempts) FROM outbox_events"))
    assert attempts == 1  # nobody claimed a row the other one held


async def test_rows_of_a_dead_relay_are_claimed_again_after_the_lease(
    empty_outbox, outbox_url, amqp_names
):
    ids = await insert_outbox_events(empty_outbox, 20)
    # A relay that claims and then dies: the rows stay pending with a lease.
    claimed = await outbox.claim_batch(empty_outbox, batch=100, lease_seconds=1.0)
    assert {e.id for e in claimed} == set(ids)
    assert await outbox.claim_batch(empty_outbox, batch=100, lease_seconds=1.0) == []

    relay = Relay(relay_settings(outbox_url, amqp_names), create_async_engine_for(outbox_url))
    async with running(relay):
        await wait_until(lambda: published(empty_outbox, 20), within=10, what="20 published")
    await relay.engine.dispose()
    messages = await take_all(amqp_names["NOTIFIER_QUEUE"])
    assert sorted(m.message_id for m in messages) == sorted(ids)
    async with empty_outbox.connect() as conn:
        attempts = set(await conn.scalars(text("SELECT attempts FROM outbox_events")))
    assert attempts == {2}


async def test_a_claim_marks_the_previous_batch_published(empty_outbox):
    first, second, third = await insert_outbox_events(empty_outbox, 3)
    # A lease that has already run out: the row is ready again (as after a long stall), yet it
    # was confirmed; marked by the claim, it must not also be claimed by it.
    [stale] = await outbox.claim_batch(empty_outbox, batch=1, lease_seconds=0.0)
    assert stale.id == first
    [held] = await outbox.claim_batch(empty_outbox, batch=1, lease_seconds=30.0, published=[])
    assert held.id == second

    claimed = await outbox.claim_batch(
        empty_outbox, batch=10, lease_seconds=30.0, published=[first, second]
    )
    assert [e.id for e in claimed] == [third]
    async with empty_outbox.connect() as conn:
        rows = dict(
            (await conn.execute(text("SELECT id, state FROM outbox_events"))).tuples().all()
        )
        attempts = await conn.scalar(
            text("SELECT attempts FROM outbox_events WHERE id = :id"), {"id": first}
        )
    assert rows == {first: "published", second: "published", third: "pending"}
    assert attempts == 1  # marked, not claimed a second time


async def test_unroutable_event_backs_off_then_fails_terminally(
    empty_outbox, outbox_url, amqp_names
):
    # Nothing is bound to this routing key: the broker returns it and the publish fails.
    [event_id] = await insert_outbox_events(
        empty_outbox, 1, routing_key="refund.created", event_type="payment.pending"
    )
    [ok_id] = await insert_outbox_events(empty_outbox, 1)
    settings = relay_settings(
        outbox_url,
        amqp_names,
        RELAY_MAX_ATTEMPTS=3,
        RELAY_BACKOFF_BASE_SECONDS=0.2,
        RELAY_BACKOFF_MAX_SECONDS=1,
    )
    relay = Relay(settings, create_async_engine_for(outbox_url))
    seen_retry_at = []

    async def failed() -> bool:
        async with empty_outbox.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        "SELECT state, attempts, next_retry_at, last_error FROM outbox_events"
                        " WHERE id = :id"
                    ),
                    {"id": event_id},
                )
            ).one()
        if row.attempts and row.next_retry_at not in seen_retry_at:
            seen_retry_at.append(row.next_retry_at)
        return row if row.state == "failed" else None

    async with running(relay):
        row = await wait_until(failed, within=15, interval=0.01, what="terminal failure")
    await relay.engine.dispose()
    assert row.attempts == 3
    assert "PublishError" in row.last_error or "unroutable" in row.last_error.lower()
    assert (await outbox_states(empty_outbox)) == {"failed": 1, "published": 1}
    messages = await take_all(amqp_names["NOTIFIER_QUEUE"])
    assert [m.message_id for m in messages] == [ok_id]


async def test_a_row_that_is_not_a_payment_event_is_never_published(
    empty_outbox, outbox_url, amqp_names
):
    """The relay checks each body against the shared envelope (payplane_core.events): a row
    that is not one fails (backoff, then terminally) instead of poisoning the consumers."""
    [bad_id] = await insert_outbox_events(
        empty_outbox, 1, routing_key="payment.pending", event_type="refund.created"
    )
    [ok_id] = await insert_outbox_events(empty_outbox, 1)
    settings = relay_settings(
        outbox_url, amqp_names, RELAY_MAX_ATTEMPTS=2, RELAY_BACKOFF_BASE_SECONDS=0.1
    )
    relay = Relay(settings, create_async_engine_for(outbox_url))

    async def settled() -> dict | None:
        states = await outbox_states(empty_outbox)
        return states if states == {"failed": 1, "published": 1} else None

    async with running(relay):
        await wait_until(settled, within=15, what="bad row failed, good row published")
    await relay.engine.dispose()
    async with empty_outbox.connect() as conn:
        error = await conn.scalar(
            text("SELECT last_error FROM outbox_events WHERE id = :id"), {"id": bad_id}
        )
    assert error.startswith("InvalidEvent")
    messages = await take_all(amqp_names["NOTIFIER_QUEUE"])
    assert [m.message_id for m in messages] == [ok_id]


async def test_broker_down_keeps_rows_pending_and_not_ready(empty_outbox, outbox_url, amqp_names):
    await insert_outbox_events(empty_outbox, 5)
    names = amqp_names | {"AMQP_URL": "amqp://guest:guest@127.0.0.1:1/"}
    app = create_app(relay_settings(outbox_url, names, AMQP_CONNECT_TIMEOUT_SECONDS=0.5))
    failed_connects = _Messages("broker unreachable")
    logging.getLogger("workers.amqp").addHandler(failed_connects)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://relay.test"
        ) as client:
            # Two failed connects: the relay has been through its loop without a broker.
            await wait_until(lambda: failed_connects.count >= 2, within=10, what="2 connects")
            assert (await client.get("/health")).status_code == 200
            ready = await client.get("/ready")
            assert ready.status_code == 503
            assert ready.json()["checks"] == {"broker": "ConnectionError"}
            assert ready.headers["content-type"] == "application/problem+json"
    async with empty_outbox.connect() as conn:
        row = (
            await conn.execute(text("SELECT max(attempts), min(state) FROM outbox_events"))
        ).one()
    logging.getLogger("workers.amqp").removeHandler(failed_connects)
    assert tuple(row) == (0, "pending")  # no attempt is spent while the broker is unreachable


class _Messages(logging.Handler):
    """Counts one log message (the service's logging does not reach pytest's caplog)."""

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message, self.count = message, 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += record.getMessage() == self.message


def test_a_mark_delay_near_the_lease_is_refused():
    # Unmarked rows are safe while leased: a delay near the lease would let another relay
    # publish them again while this one is still holding them.
    with pytest.raises(ValidationError, match="RELAY_MARK_DELAY_SECONDS"):
        RelaySettings(RELAY_MARK_DELAY_SECONDS=15, RELAY_LEASE_SECONDS=30)
    assert RelaySettings(RELAY_MARK_DELAY_SECONDS=14, RELAY_LEASE_SECONDS=30)
