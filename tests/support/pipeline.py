"""Helpers for the async pipeline tests: own RabbitMQ names, outbox rows, queue counting."""

import asyncio
import json
import uuid
from collections import Counter
from datetime import UTC, datetime

import aio_pika
from payplane_core.ids import new_id
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/payplane_test"


def topology_env(tag: str | None = None) -> dict[str, str]:
    """RabbitMQ names of our own in the shared test vhost (an e2e stack may run there too)."""
    tag = tag or uuid.uuid4().hex[:8]
    return {
        "AMQP_URL": AMQP_URL,
        "AMQP_EXCHANGE": f"unit.{tag}.payments",
        "NOTIFIER_QUEUE": f"unit.{tag}.notifier",
        "DEAD_LETTER_EXCHANGE": f"unit.{tag}.dlx",
        "DEAD_LETTER_QUEUE": f"unit.{tag}.dlq",
    }


async def delete_topology(env: dict[str, str]) -> None:
    connection = await aio_pika.connect(AMQP_URL, timeout=5)
    async with connection:
        channel = await connection.channel()
        for queue in (env["NOTIFIER_QUEUE"], env["DEAD_LETTER_QUEUE"]):
            await channel.queue_delete(queue)
        for exchange in (env["AMQP_EXCHANGE"], env["DEAD_LETTER_EXCHANGE"]):
            await channel.exchange_delete(exchange)


async def queue_depth(queue_name: str) -> int:
    connection = await aio_pika.connect(AMQP_URL, timeout=5)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(queue_name, passive=True)
        return queue.declaration_result.message_count


async def take_all(queue_name: str, *, idle_seconds: float = 1.0) -> list[aio_pika.IncomingMessage]:
    """Consume (and ack) every message until the queue stays idle; returns them in order."""
    taken: list[aio_pika.IncomingMessage] = []
    connection = await aio_pika.connect(AMQP_URL, timeout=5)
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=500)
        queue = await channel.declare_queue(queue_name, passive=True)
        async with queue.iterator() as messages:
            while True:
                try:
                    message = await asyncio.wait_for(anext(messages), timeout=idle_seconds)
                except TimeoutError:
                    break
                await message.ack()
                taken.append(message)
    return taken


def duplicates(messages: list[aio_pika.IncomingMessage]) -> dict[str, int]:
    counts = Counter(m.message_id for m in messages)
    return {k: v for k, v in counts.items() if v > 1}


async def insert_outbox_events(
    engine: AsyncEngine, count: int, *, routing_key: str = "payment.pending"
) -> list[str]:
    """Outbox rows as the payments service writes them (for relay-only tests and the bench)."""
    at = datetime.now(UTC)
    rows = []
    for _ in range(count):
        event_id, payment_id = new_id("evt"), new_id("pay")
        payload = {
            "type": routing_key,
            "timestamp": at.isoformat(),
            "data": {
                "id": payment_id,
                "merchant_id": "mer_test",
                "amount": 1000,
                "currency": "EUR",
                "status": routing_key.split(".", 1)[-1],
            },
        }
        rows.append(
            {
                "id": event_id,
                "payment_id": payment_id,
                "merchant_id": "mer_test",
                "event_type": routing_key,
                "routing_key": routing_key,
                "payload": json.dumps(payload),
                "headers": json.dumps({"x-request-id": f"req-{event_id}"}),
                "at": at,
            }
        )
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO outbox_events (id, payment_id, merchant_id, event_type, routing_key,"
                " payload, headers, state, attempts, next_retry_at, created_at) VALUES (:id,"
                " :payment_id, :merchant_id, :event_type, :routing_key, CAST(:payload AS jsonb),"
                " CAST(:headers AS jsonb), 'pending', 0, :at, :at)"
            ),
            rows,
        )
    return [r["id"] for r in rows]


async def outbox_states(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT state, count(*) FROM outbox_events GROUP BY state"))
        return {state: n for state, n in rows}


async def wait_until(predicate, *, within: float, interval: float = 0.05, what: str = "condition"):
    """Poll an async predicate until it returns something truthy; fail after ``within`` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = await predicate()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(interval)
