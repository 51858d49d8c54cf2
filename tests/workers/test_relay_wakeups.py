"""What wakes the relay: the payments database's NOTIFY of each outbox insert, its fallback
poll, and its listener coming back after the connection was killed. Real PostgreSQL and
RabbitMQ; every wait is for an observable fact, bounded."""

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aio_pika
import asyncpg
import httpx
from payplane_core import messaging
from payplane_core.db import asyncpg_dsn
from prometheus_client import REGISTRY
from sqlalchemy import text
from workers.relay.config import RelaySettings
from workers.relay.listener import APPLICATION_NAME, CHANNEL
from workers.relay.main import create_app
from workers.relay.publisher import Relay

from tests.support.payments import client_for
from tests.support.pipeline import AMQP_URL, insert_outbox_events, take_all, wait_until
from tests.workers.test_relay import create_async_engine_for, relay_settings, running

NEVER = 3600.0  # a fallback poll that cannot be what published anything in these tests


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def is_published(engine, event_id: str) -> bool:
    async with engine.connect() as conn:
        state = await conn.scalar(
            text("SELECT state FROM outbox_events WHERE id = :id"), {"id": event_id}
        )
    return state == "published"


async def listener_pids(engine) -> list[int]:
    async with engine.connect() as conn:
        return list(
            await conn.scalars(
                text(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = :name"
                    " AND datname = current_database()"
                ),
                {"name": APPLICATION_NAME},
            )
        )


@contextlib.asynccontextmanager
async def serving(settings: RelaySettings) -> AsyncIterator[tuple[Relay, httpx.AsyncClient]]:
    """The relay app running (its lifespan), with a client for its probes."""
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://relay.test") as client,
    ):
        yield app.state.relay, client


async def publish_through_notification(relay: Relay, engine) -> str:
    """Insert one event while ``relay`` (fallback poll: never) waits; it must be published.

    A first event proves the relay is past its start-up claims (those may take it); the second
    is then inserted while the relay waits, and only its notification can wake it."""
    [first] = await insert_outbox_events(engine, 1)
    await wait_until(lambda: is_published(engine, first), within=10, what="first event")
    notified = metric("payplane_relay_notifications_total")
    [second] = await insert_outbox_events(engine, 1)
    await wait_until(lambda: is_published(engine, second), within=5, what="notified event")
    assert metric("payplane_relay_notifications_total") > notified
    return second


async def test_payments_writes_notify_once_per_transaction(empty_outbox, outbox_url, payments_app):
    """The trigger covers the payments service's own insert paths (a create, a status change
    announced in the same statement), one notification per committed transaction."""
    received: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(asyncpg_dsn(outbox_url))
    try:
        await listener.add_listener(CHANNEL, lambda *args: received.put_nowait(args[3]))
        async with client_for(payments_app, merchant_id="mer_notify") as merchant:
            created = await merchant.post(
                "/api/v1/payments", json={"amount": 10, "currency": "EUR"}
            )
        assert created.status_code == 201, created.text
        async with asyncio.timeout(5):
            assert await received.get() == ""
        async with client_for(payments_app, caller="providers") as internal:
            moved = await internal.post(
                f"/internal/v1/payments/{created.json()['id']}/events",
                json={"type": "provider.accepted", "status": "processing", "source": "test"},
            )
        assert moved.status_code == 200, moved.text
        async with asyncio.timeout(5):
            await received.get()
        # Many rows in one transaction: one notification (PostgreSQL folds identical ones).
        await insert_outbox_events(empty_outbox, 50)
        async with asyncio.timeout(5):
            await received.get()
        # A marker after them: had the 50 rows sent more than one, they would come before it.
        async with empty_outbox.connect() as conn:
            await conn.execute(text("SELECT pg_notify(:channel, 'marker')"), {"channel": CHANNEL})
            await conn.commit()
        async with asyncio.timeout(5):
            assert await received.get() == "marker"
    finally:
        await listener.close()


async def test_an_insert_wakes_an_idle_relay_by_its_notification(
    empty_outbox, outbox_url, amqp_names
):
    settings = relay_settings(outbox_url, amqp_names, RELAY_FALLBACK_POLL_SECONDS=NEVER)
    relay = Relay(settings, create_async_engine_for(outbox_url))
    polls = metric("payplane_relay_wakeups_total", reason="poll")
    async with running(relay):
        await wait_until(lambda: relay.listener.listening, within=10, what="listening")
        await publish_through_notification(relay, empty_outbox)
        # Commits one after another, many while the relay claims and publishes: a notification
        # arriving then is not lost (nothing else would publish the last ones).
        ids = [i for _ in range(30) for i in await insert_outbox_events(empty_outbox, 1)]
        for event_id in ids:
            await wait_until(lambda e=event_id: is_published(empty_outbox, e), within=5)
    await relay.engine.dispose()
    assert metric("payplane_relay_wakeups_total", reason="poll") == polls
    assert len(await take_all(amqp_names["NOTIFIER_QUEUE"])) == 32


async def test_notifications_within_the_minimum_interval_make_one_claim(
    empty_outbox, outbox_url, amqp_names
):
    settings = relay_settings(
        outbox_url,
        amqp_names,
        RELAY_FALLBACK_POLL_SECONDS=NEVER,
        RELAY_NOTIFY_MIN_INTERVAL_SECONDS=1.0,
    )
    relay = Relay(settings, create_async_engine_for(outbox_url))
    async with running(relay):
        await wait_until(lambda: relay.listener.listening, within=10, what="listening")
        await publish_through_notification(relay, empty_outbox)
        notified = metric("payplane_relay_notifications_total")
        wakeups = metric("payplane_relay_wakeups_total", reason="notify")
        started = asyncio.get_running_loop().time()
        ids = [i for _ in range(10) for i in await insert_outbox_events(empty_outbox, 1)]
        inserted_within = asyncio.get_running_loop().time() - started
        for event_id in ids:
            await wait_until(lambda e=event_id: is_published(empty_outbox, e), within=5)
        await wait_until(
            lambda: metric("payplane_relay_notifications_total") - notified >= 10,
            within=5,
            what="10 notifications",
        )
    await relay.engine.dispose()
    assert inserted_within < 1.0  # (else the test proves nothing: a slow machine)
    assert metric("payplane_relay_wakeups_total", reason="notify") - wakeups == 1


async def test_the_fallback_poll_claims_a_row_when_it_comes_due(
    empty_outbox, outbox_url, amqp_names
):
    # Ready in 1.5 s: its notification (at insert, before the relay starts) finds nothing to
    # claim; only the poll, once the row is due, can publish it.
    [event_id] = await insert_outbox_events(empty_outbox, 1)
    async with empty_outbox.begin() as conn:
        due = await conn.scalar(
            text(
                "UPDATE outbox_events SET next_retry_at = now() + interval '1.5 seconds'"
                " WHERE id = :id RETURNING next_retry_at"
            ),
            {"id": event_id},
        )
    settings = relay_settings(outbox_url, amqp_names, RELAY_FALLBACK_POLL_SECONDS=0.3)
    relay = Relay(settings, create_async_engine_for(outbox_url))
    polls = metric("payplane_relay_wakeups_total", reason="poll")
    async with running(relay):
        await wait_until(lambda: is_published(empty_outbox, event_id), within=10, what="due row")
    await relay.engine.dispose()
    async with empty_outbox.connect() as conn:
        published_at = await conn.scalar(
            text("SELECT published_at FROM outbox_events WHERE id = :id"), {"id": event_id}
        )
    assert published_at >= due
    assert metric("payplane_relay_wakeups_total", reason="poll") > polls
    assert [m.message_id for m in await take_all(amqp_names["NOTIFIER_QUEUE"])] == [event_id]


async def test_a_batch_is_marked_by_the_next_claim_or_when_the_relay_stops(
    empty_outbox, outbox_url, amqp_names
):
    relay = Relay(relay_settings(outbox_url, amqp_names), create_async_engine_for(outbox_url))
    connection = await aio_pika.connect(AMQP_URL, timeout=5)
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange, _ = await messaging.declare(channel, relay.topology)
        [first] = await insert_outbox_events(empty_outbox, 1)
        assert await relay.relay_once(exchange) == 1
        assert not await is_published(empty_outbox, first)  # confirmed, leased, not yet marked
        [second] = await insert_outbox_events(empty_outbox, 1)
        assert await relay.relay_once(exchange) == 1
        assert await is_published(empty_outbox, first)  # by the claim that took the second
        assert not await is_published(empty_outbox, second)

    # Stopped before any other claim (its broker is out of reach): it marks what it had.
    unreachable = amqp_names | {"AMQP_URL": "amqp://guest:guest@127.0.0.1:1/"}
    stopping = Relay(relay_settings(outbox_url, unreachable), relay.engine)
    stopping._confirmed = relay._confirmed  # noqa: SLF001 - the same relay's state, restarted
    async with running(stopping):
        await wait_until(lambda: stopping.listener.listening, within=10, what="running")
    assert await is_published(empty_outbox, second)
    await relay.engine.dispose()
    assert [m.message_id for m in await take_all(amqp_names["NOTIFIER_QUEUE"])] == [first, second]


async def test_a_killed_listener_connection_is_replaced(empty_outbox, outbox_url, amqp_names):
    settings = relay_settings(outbox_url, amqp_names, RELAY_FALLBACK_POLL_SECONDS=NEVER)
    async with serving(settings) as (relay, client):
        await wait_until(
            lambda: relay.listener.listening and relay.broker.connected, within=10, what="up"
        )
        assert (await client.get("/ready")).status_code == 200
        [killed] = await listener_pids(empty_outbox)
        connects = metric("payplane_relay_listener_connects_total")
        async with empty_outbox.connect() as conn:
            assert await conn.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": killed})

        async def replaced() -> bool:
            pids = await listener_pids(empty_outbox)
            return (
                relay.listener.listening
                and metric("payplane_relay_listener_connects_total") > connects
                and len(pids) == 1
                and killed not in pids
            )

        await wait_until(replaced, within=10, what="a new listener connection")
        assert (await client.get("/ready")).status_code == 200
        await publish_through_notification(relay, empty_outbox)


async def test_readiness_reports_the_listener(empty_outbox, outbox_url, amqp_names):
    # Listening through a server that refuses: the relay runs on its poll, and is not ready.
    settings = relay_settings(
        outbox_url,
        amqp_names,
        RELAY_LISTEN_DATABASE_URL="postgresql://payplane:payplane@127.0.0.1:1/none",
        RELAY_LISTEN_RECONNECT_MAX_SECONDS=0.2,
    )
    async with serving(settings) as (relay, client):
        await wait_until(lambda: relay.broker.connected, within=10, what="broker")
        ready = await client.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"] == {"listener": "ConnectionError"}
        [event_id] = await insert_outbox_events(empty_outbox, 1)
        await wait_until(lambda: is_published(empty_outbox, event_id), within=10, what="polled")
