"""The notifier: first attempts from the queue, retries from the database, redelivery by hand.

A message is acked only once its delivery row exists (with its first attempt recorded when we
made it). If the notifier dies before the ack, RabbitMQ hands the message to another consumer;
if it dies after creating the row, the row's lease runs out and the retry loop sends it. Either
way the event goes out with the same ``webhook-id``, so the merchant can drop a duplicate.
"""

import asyncio
import contextlib
import json
import logging

import httpx
from aio_pika.abc import AbstractConnection, AbstractIncomingMessage
from payplane_core.context import accept_or_new_request_id, request_id_var
from prometheus_client import Counter, Histogram
from sqlalchemy.ext.asyncio import async_sessionmaker

from workers import amqp, topology
from workers.notifier import sender, store
from workers.notifier.config import NotifierSettings
from workers.notifier.directory import MerchantDirectory
from workers.notifier.models import Delivery

log = logging.getLogger(__name__)

ATTEMPTS = Counter("payplane_notifier_attempts_total", "Webhook attempts", ["trigger", "outcome"])
OUTCOMES = Counter(
    "payplane_notifier_deliveries_total", "Deliveries reaching a final state", ["state"]
)
DUPLICATES = Counter(
    "payplane_notifier_duplicate_messages_total", "Messages for events already known (acked)"
)
LATENCY = Histogram(
    "payplane_notifier_attempt_seconds",
    "Webhook attempt latency",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


class DeliveryNotFound(Exception):
    pass


class DeliveryBusy(Exception):
    """Still pending (the automatic schedule owns it) or being sent right now."""

    def __init__(self, state: str) -> None:
        super().__init__(state)
        self.state = state


class InvalidMessage(ValueError):
    pass


def _header(message: AbstractIncomingMessage, name: str) -> str:
    value = (message.headers or {}).get(name)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value) if value is not None else ""


def parse_message(message: AbstractIncomingMessage) -> store.IncomingEvent:
    """The relay's message -> what a delivery needs; anything else is rejected (dead-lettered)."""
    if not message.message_id:
        raise InvalidMessage("no message_id")
    try:
        body = message.body.decode()
        payload = json.loads(body)
        data = payload["data"]
        event_type = str(payload["type"])
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise InvalidMessage(f"body is not a payment event: {type(exc).__name__}") from None
    if not isinstance(data, dict):
        raise InvalidMessage("body.data is not an object")
    merchant_id = _header(message, "merchant-id") or str(data.get("merchant_id") or "")
    if not merchant_id:
        raise InvalidMessage("no merchant id")
    trace = {
        name: value
        for name in ("x-request-id", "traceparent", "tracestate")
        if (value := _header(message, name))
    }
    return store.IncomingEvent(
        event_id=message.message_id,
        merchant_id=merchant_id,
        payment_id=_header(message, "payment-id") or str(data.get("id") or ""),
        event_type=event_type,
        body=body,
        trace=trace,
    )


class Notifier:
    def __init__(
        self,
        settings: NotifierSettings,
        sessions: async_sessionmaker,
        directory: MerchantDirectory,
        client: httpx.AsyncClient,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.directory = directory
        self.client = client
        self.topology = topology.Topology.from_settings(settings)
        self.broker = amqp.BrokerState()

    async def run(self) -> None:
        await asyncio.gather(
            amqp.run_forever(self.settings, self._consume, self.broker), self._retry_forever()
        )

    # -- first attempts, from the queue ------------------------------------------------------
    async def _consume(self, connection: AbstractConnection) -> None:
        channel = await connection.channel(publisher_confirms=False)
        await channel.set_qos(prefetch_count=self.settings.NOTIFIER_PREFETCH)
        _, queue = await topology.declare(channel, self.topology)
        await queue.consume(self.on_message)
        self.broker.connected = True
        log.info("notifier consuming", extra={"queue": self.topology.queue})
        await amqp.wait_broken(connection, channel)

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        try:
            event = parse_message(message)
        except InvalidMessage as exc:
            log.error("rejected message", extra={"message_id": message.message_id, "why": str(exc)})
            await message.reject(requeue=False)  # to the dead letters, for a human
            return
        request_id_var.set(accept_or_new_request_id(event.trace.get("x-request-id")))
        try:
            claim = await store.accept_event(
                self.sessions, event=event, lease_seconds=self.settings.DELIVERY_LEASE_SECONDS
            )
            if claim is None:
                DUPLICATES.inc()
            else:
                await self.deliver(claim, manual=False)
            await message.ack()
        except Exception:  # noqa: BLE001 - database down and the like: hand it back, slowly
            log.exception("message not processed; requeueing", extra={"event_id": event.event_id})
            await asyncio.sleep(1)
            with contextlib.suppress(Exception):
                await message.nack(requeue=True)

    # -- retries, from the database -----------------------------------------------------------
    async def _retry_forever(self) -> None:
        while True:
            try:
                claimed = await self.retry_due()
            except Exception:  # noqa: BLE001 - keep the loop alive; the rows stay due
                log.exception("retry loop failed")
                claimed = 0
            if claimed < self.settings.RETRY_BATCH_SIZE:
                await asyncio.sleep(self.settings.RETRY_POLL_INTERVAL_SECONDS)

    async def retry_due(self) -> int:
        claims = await store.claim_due(
            self.sessions,
            batch=self.settings.RETRY_BATCH_SIZE,
            lease_seconds=self.settings.DELIVERY_LEASE_SECONDS,
        )
        await asyncio.gather(*(self.deliver(claim, manual=False) for claim in claims))
        return len(claims)

    # -- one attempt ----------------------------------------------------------------------------
    async def deliver(
        self, claim: store.Claim, *, manual: bool
    ) -> tuple[Delivery, store.AttemptOutcome]:
        delivery = claim.delivery
        outcome = await sender.attempt(
            self.client,
            self.directory,
            merchant_id=delivery.merchant_id,
            webhook_id=delivery.event_id,
            body=delivery.body,
            timeout_seconds=self.settings.WEBHOOK_TIMEOUT_SECONDS,
        )
        recorded = await store.record_attempt(
            self.sessions,
            claim=claim,
            outcome=outcome,
            manual=manual,
            schedule=self.settings.WEBHOOK_RETRY_SCHEDULE_SECONDS,
        )
        trigger = "manual" if manual else "automatic"
        ATTEMPTS.labels(trigger, "success" if outcome.succeeded else "failure").inc()
        LATENCY.observe(outcome.latency_ms / 1000)
        if recorded.state != "pending":
            OUTCOMES.labels(recorded.state).inc()
        if not outcome.succeeded:
            log.warning(
                "webhook attempt failed",
                extra={"delivery_id": delivery.id, "error": outcome.error, "state": recorded.state},
            )
        return recorded, outcome


async def redeliver(notifier: Notifier, *, ident: str) -> tuple[Delivery, store.AttemptOutcome]:
    """Send a failed (or delivered) delivery again, now, keeping its ``webhook-id``."""
    async with notifier.sessions() as session:
        delivery = await store.find_delivery(session, ident=ident)
    if delivery is None:
        raise DeliveryNotFound(ident)
    claim = await store.claim_for_redelivery(
        notifier.sessions,
        delivery_id=delivery.id,
        lease_seconds=notifier.settings.DELIVERY_LEASE_SECONDS,
    )
    if claim is None:
        raise DeliveryBusy(delivery.state)
    return await notifier.deliver(claim, manual=True)
