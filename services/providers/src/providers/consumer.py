"""Consumes ``payment.pending`` events and routes each payment (manual ack after the work).

Topology, declared idempotently: the durable topic exchange the outbox relay publishes to, and
this service's own durable queue bound to ``payment.pending``. A message is acked only after
the routing decision has been reported to payments; a redelivered one is harmless (see flow).
"""

import asyncio
import json
import logging
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage
from payplane_core import telemetry
from payplane_core.context import accept_or_new_request_id, request_id_var

from providers.core.config import Settings
from providers.flow import FlowDeps, RetryLater, route_payment
from providers.platform import Unavailable

log = logging.getLogger(__name__)
_tracer = telemetry.tracer(__name__)


class BadMessage(ValueError):
    pass


def parse_payment(body: bytes) -> dict[str, Any]:
    try:
        event = json.loads(body)
        payment = event["data"]
        fields = (
            payment["id"],
            payment["merchant_id"],
            payment["amount"],
            payment["currency"],
            payment["status"],
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise BadMessage(f"not a payment event: {type(exc).__name__}") from None
    if not isinstance(fields[2], int) or isinstance(fields[2], bool) or fields[2] <= 0:
        raise BadMessage("amount must be a positive integer")
    return payment


def _trace_headers(headers: dict[str, Any]) -> dict[str, str]:
    return {
        name: value.decode() if isinstance(value, bytes) else str(value)
        for name in ("traceparent", "tracestate")
        if (value := headers.get(name))
    }


async def handle(deps: FlowDeps, message: AbstractIncomingMessage, *, retry_delay: float) -> None:
    headers = message.headers or {}
    token = request_id_var.set(accept_or_new_request_id(str(headers.get("x-request-id") or "")))
    try:
        try:
            payment = parse_payment(message.body)
        except BadMessage as exc:
            log.error(
                "dropping malformed message",
                extra={"message_id": message.message_id, "error": str(exc)},
            )
            await message.reject(requeue=False)
            return
        if payment["status"] != "pending":
            await message.ack()
            return
        try:
            # Under the consumer's span (aio-pika instrumentation), or the message's own trace.
            parent = telemetry.parent_context(_trace_headers(headers))
            with _tracer.start_as_current_span("route payment", context=parent):
                await route_payment(deps, payment=payment)
        except (RetryLater, Unavailable) as exc:
            log.warning(
                "payment routing postponed", extra={"payment_id": payment["id"], "reason": str(exc)}
            )
            await asyncio.sleep(retry_delay)
            await message.nack(requeue=True)
            return
        except Exception:
            log.exception("payment routing failed", extra={"payment_id": payment["id"]})
            await asyncio.sleep(retry_delay)
            await message.nack(requeue=True)
            return
        await message.ack()
    finally:
        request_id_var.reset(token)


async def declare(channel: aio_pika.abc.AbstractChannel, settings: Settings):
    exchange = await channel.declare_exchange(
        settings.AMQP_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
    )
    queue = await channel.declare_queue(settings.AMQP_QUEUE, durable=True)
    await queue.bind(exchange, routing_key=settings.AMQP_ROUTING_KEY)
    return exchange, queue


async def consume(
    deps: FlowDeps, settings: Settings, *, ready: asyncio.Event | None = None
) -> None:
    """Run until cancelled; ``connect_robust`` reconnects and re-consumes after a broker restart."""
    connection = await aio_pika.connect_robust(settings.AMQP_URL)
    tasks: set[asyncio.Task] = set()
    try:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=settings.AMQP_PREFETCH)
        _, queue = await declare(channel, settings)

        async def on_message(message: AbstractIncomingMessage) -> None:
            # Each message in its own task: up to AMQP_PREFETCH payments routed at once.
            task = asyncio.create_task(
                handle(deps, message, retry_delay=settings.RETRY_DELAY_SECONDS)
            )
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        await queue.consume(on_message)
        if ready is not None:
            ready.set()
        await asyncio.Future()  # until cancelled
    finally:
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await connection.close()
