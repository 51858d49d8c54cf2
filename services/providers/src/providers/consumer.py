"""Consumes ``payment.pending`` events and routes each payment (manual ack after the work).

The topology is ``payplane_core.messaging``'s (the relay declares the same): a quorum queue with
a delivery limit and its own dead letters. A message is acked only after the routing decision
has been reported to payments; a redelivered one is harmless (see flow). Three ways out:

- not a payment event (``payplane_core.events`` refuses it): rejected, so dead-lettered at once;
- postponed (another worker holds the payment, a provider's answer is not known yet, payments
  is unreachable): a fresh copy goes back to the queue and the original is acked, so waiting on
  the outside world never counts towards the delivery limit;
- anything else (a bug this message triggers): requeued, counted by the broker, and after the
  delivery limit dead-lettered instead of looping forever.
"""

import asyncio
import logging
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from payplane_core import messaging, telemetry
from payplane_core.context import accept_or_new_request_id, request_id_var
from payplane_core.events import InvalidEvent, PaymentEvent
from prometheus_client import Counter

from providers.core.config import Settings
from providers.flow import FlowDeps, RetryLater, route_payment
from providers.platform import Unavailable

log = logging.getLogger(__name__)
_tracer = telemetry.tracer(__name__)
CONSUMED = Counter(
    "payplane_provider_events_consumed_total",
    "payment.pending messages consumed, by what became of them",
    ["outcome"],  # routed, ignored, dead_lettered, postponed, requeued
)


def topology(settings: Settings) -> messaging.Topology:
    queue = messaging.ConsumerQueue(
        name=settings.AMQP_QUEUE,
        binding=settings.AMQP_ROUTING_KEY,
        dead_letter_exchange=settings.AMQP_DEAD_LETTER,
        dead_letter_queue=settings.AMQP_DEAD_LETTER,
    )
    return messaging.Topology(exchange=settings.AMQP_EXCHANGE, queues=(queue,))


def _trace_headers(headers: dict[str, Any]) -> dict[str, str]:
    return {
        name: value.decode() if isinstance(value, bytes) else str(value)
        for name in ("traceparent", "tracestate")
        if (value := headers.get(name))
    }


async def handle(
    deps: FlowDeps,
    message: AbstractIncomingMessage,
    *,
    retry_delay: float,
    postpone: "Postpone",
) -> None:
    headers = message.headers or {}
    token = request_id_var.set(accept_or_new_request_id(str(headers.get("x-request-id") or "")))
    try:
        try:
            event = PaymentEvent.parse(message.body)
            if event.data.merchant_id is None:  # routing needs it (allowed providers)
                raise InvalidEvent("data.merchant_id is missing")
        except InvalidEvent as exc:
            log.error(
                "dead-lettering a malformed message",
                extra={"message_id": message.message_id, "error": str(exc)},
            )
            await message.reject(requeue=False)
            CONSUMED.labels("dead_lettered").inc()
            return
        if event.type != "payment.pending":
            await message.ack()
            CONSUMED.labels("ignored").inc()
            return
        payment = event.data.model_dump(mode="json")
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
            await postpone(message)
            CONSUMED.labels("postponed").inc()
            return
        except Exception:
            log.exception("payment routing failed", extra={"payment_id": payment["id"]})
            await asyncio.sleep(retry_delay)
            await message.nack(requeue=True)  # counted: dead-lettered after the delivery limit
            CONSUMED.labels("requeued").inc()
            return
        await message.ack()
        CONSUMED.labels("routed").inc()
    finally:
        request_id_var.reset(token)


class Postpone:
    """Puts a fresh copy of a message at the back of its queue (publisher-confirmed), then
    acks the original: a wait, unlike a failure, must not use up the delivery limit."""

    def __init__(self, channel: AbstractChannel, queue: str) -> None:
        self.channel, self.queue = channel, queue

    async def __call__(self, message: AbstractIncomingMessage) -> None:
        await self.channel.default_exchange.publish(
            messaging.fresh_copy(message), routing_key=self.queue
        )
        await message.ack()


async def consume(
    deps: FlowDeps, settings: Settings, *, ready: asyncio.Event | None = None
) -> None:
    """Run until cancelled; ``connect_robust`` reconnects and re-consumes after a broker restart."""
    connection = await aio_pika.connect_robust(settings.AMQP_URL)
    tasks: set[asyncio.Task] = set()
    try:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=settings.AMQP_PREFETCH)
        _, queues = await messaging.declare(channel, topology(settings))
        queue = queues[settings.AMQP_QUEUE]
        postpone = Postpone(await connection.channel(publisher_confirms=True), queue.name)

        async def on_message(message: AbstractIncomingMessage) -> None:
            # Each message in its own task: up to AMQP_PREFETCH payments routed at once.
            task = asyncio.create_task(
                handle(deps, message, retry_delay=settings.RETRY_DELAY_SECONDS, postpone=postpone)
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
