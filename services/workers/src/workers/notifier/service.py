"""The notifier: first attempts from the queue, retries from the database, redelivery by hand.

A message is acked only once its delivery row exists; the attempt itself then runs in the
background, bounded in time and capped per merchant, so one slow merchant holds up no other.
If the notifier dies before the ack, RabbitMQ hands the message to another consumer; if it
dies after creating the row, the row's lease runs out and the retry loop sends it. Either
way the event goes out with the same ``webhook-id``, so the merchant can drop a duplicate.
"""

import asyncio
import contextlib
import logging
from collections import Counter

import aiohttp
from aio_pika.abc import AbstractConnection, AbstractIncomingMessage
from payplane_core import egress, messaging, telemetry
from payplane_core.context import accept_or_new_request_id, request_id_var
from payplane_core.events import InvalidEvent, PaymentEvent
from prometheus_client import Counter as Metric
from prometheus_client import Histogram
from sqlalchemy.ext.asyncio import async_sessionmaker

from workers import amqp, topology
from workers.bursts import Bursts
from workers.notifier import metrics, sender, store
from workers.notifier.config import NotifierSettings
from workers.notifier.directory import MerchantDirectory
from workers.notifier.models import Delivery

log = logging.getLogger(__name__)
_tracer = telemetry.tracer(__name__)

ATTEMPTS = Metric("payplane_notifier_attempts_total", "Webhook attempts", ["trigger", "outcome"])
OUTCOMES = Metric(
    "payplane_notifier_deliveries_total", "Deliveries reaching a final state", ["state"]
)
DUPLICATES = Metric(
    "payplane_notifier_duplicate_messages_total", "Messages for events already known (acked)"
)
TOGETHER = Histogram(
    "payplane_notifier_accepted_together",
    "Messages whose deliveries one statement created (a burst from RabbitMQ)",
    buckets=(1, 2, 4, 8, 16, 32, 64),
)
RECORDED_TOGETHER = Histogram(
    "payplane_notifier_recorded_together",
    "Attempts one statement recorded (attempts ending together)",
    buckets=(1, 2, 4, 8, 16, 32, 64),
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
        event = PaymentEvent.parse(body)
    except (UnicodeDecodeError, InvalidEvent) as exc:
        raise InvalidMessage(f"body is not a payment event: {exc}") from None
    data = event.data
    merchant_id = _header(message, "merchant-id") or data.merchant_id
    if not merchant_id:
        raise InvalidMessage("no merchant id")
    # Stored with the delivery so retries from the database continue the same trace.
    trace = {"x-request-id": _header(message, "x-request-id")} | telemetry.carrier(
        {name: _header(message, name) for name in ("traceparent", "tracestate")}
    )
    return store.IncomingEvent(
        event_id=message.message_id,
        merchant_id=merchant_id,
        payment_id=_header(message, "payment-id") or data.id,
        event_type=event.type,
        body=body,
        trace=trace,
    )


class Notifier:
    def __init__(
        self,
        settings: NotifierSettings,
        sessions: async_sessionmaker,
        directory: MerchantDirectory,
        webhooks: aiohttp.ClientSession,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.directory = directory
        self.webhooks = webhooks
        self.topology = topology.for_notifier(settings)
        self.broker = amqp.BrokerState()
        self.limits = sender.Limits(
            deadline_seconds=settings.WEBHOOK_TIMEOUT_SECONDS,
            max_response_bytes=settings.WEBHOOK_MAX_RESPONSE_BYTES,
            allowlist=egress.parse_allowlist(settings.WEBHOOK_URL_ALLOWLIST),
        )
        # Deliveries held now (waiting for a slot or being sent), per merchant and in all: each
        # attempt runs on its own (a hung one holds up nothing but itself), and a merchant's
        # attempts at once are capped by its slots.
        self.busy: Counter[str] = Counter()
        self.slots: dict[str, asyncio.Semaphore] = {}
        self.tasks: set[asyncio.Task] = set()
        # Delivery rows of messages, and attempts, written a burst to a statement (``bursts``).
        self.accepting = Bursts(self._accept_burst, sizes=TOGETHER)
        self.recording = Bursts(self._record_burst, sizes=RECORDED_TOGETHER)

    async def run(self) -> None:
        try:
            await asyncio.gather(
                amqp.run_forever(self.settings, self._consume, self.broker), self._retry_forever()
            )
        finally:  # attempts cut short keep their lease; another notifier takes them after it
            for task in self.tasks:
                task.cancel()

    # -- attempts in the background, capped per merchant --------------------------------------
    async def dispatch(self, claim: store.Claim) -> bool:
        """Start the attempt in the background, where it waits (briefly) for one of its
        merchant's slots; if this notifier already holds its most, the delivery goes back to the
        database, due again shortly. True if taken on."""
        if len(self.tasks) >= self.settings.WEBHOOK_MAX_IN_FLIGHT:
            await self._defer(claim)
            return False
        merchant = claim.delivery.merchant_id
        self.busy[merchant] += 1
        if merchant not in self.slots:
            self.slots[merchant] = asyncio.Semaphore(
                self.settings.WEBHOOK_MAX_CONCURRENCY_PER_MERCHANT
            )
        task = asyncio.create_task(self._attempt_in_background(claim, self.slots[merchant]))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return True

    async def _defer(self, claim: store.Claim) -> None:
        await store.defer(self.sessions, claim=claim, seconds=self.settings.WEBHOOK_DEFER_SECONDS)

    async def _attempt_in_background(self, claim: store.Claim, slot: asyncio.Semaphore) -> None:
        merchant = claim.delivery.merchant_id
        try:
            # Waiting here, in memory, costs nothing; the database is for a merchant whose
            # slots stay taken (a slow endpoint). The wait plus the attempt's own deadline stay
            # within the lease (settings check), so no other notifier can take it meanwhile.
            try:
                async with asyncio.timeout(self.settings.WEBHOOK_DEFER_SECONDS):
                    await slot.acquire()
            except TimeoutError:
                await self._defer(claim)
                return
            try:
                await self.deliver(claim, manual=False)
            finally:
                slot.release()
        except Exception:  # noqa: BLE001 - e.g. database down: the lease ends, a retry follows
            log.exception("attempt not recorded", extra={"delivery_id": claim.delivery.id})
        finally:
            self.busy[merchant] -= 1
            if self.busy[merchant] <= 0:
                del self.busy[merchant]
                del self.slots[merchant]

    # -- first attempts, from the queue ------------------------------------------------------
    async def _consume(self, connection: AbstractConnection) -> None:
        channel = await connection.channel(publisher_confirms=False)
        await channel.set_qos(prefetch_count=self.settings.NOTIFIER_PREFETCH)
        _, queues = await messaging.declare(channel, self.topology)
        queue = queues[self.settings.NOTIFIER_QUEUE]
        await queue.consume(self.on_message)
        self.broker.connected = True
        log.info("notifier consuming", extra={"queue": queue.name})
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
            claim = await self._accept(event)
            if claim is None:
                DUPLICATES.inc()
            else:
                await self.dispatch(claim)  # the row exists: the event can no longer be lost
            await message.ack()
        except Exception:  # noqa: BLE001 - database down and the like: hand it back, slowly
            log.exception("message not processed; requeueing", extra={"event_id": event.event_id})
            await asyncio.sleep(1)
            with contextlib.suppress(Exception):
                await message.nack(requeue=True)

    async def _accept(self, event: store.IncomingEvent) -> store.Claim | None:
        """The event's delivery, created in one statement with those of the messages that came
        with it (RabbitMQ hands a burst over at once, a task per message)."""
        return await self.accepting(event)

    async def _accept_burst(self, events: list[store.IncomingEvent]) -> list[store.Claim | None]:
        claims = await store.accept_events(
            self.sessions, events=events, lease_seconds=self.settings.DELIVERY_LEASE_SECONDS
        )
        # pop: a message repeated within the burst is a duplicate, like a known event.
        return [claims.pop(event.event_id, None) for event in events]

    async def _record_burst(self, attempts: list[store.Attempt]) -> list[Delivery]:
        return await store.record_attempts(
            self.sessions, attempts=attempts, schedule=self.settings.WEBHOOK_RETRY_SCHEDULE_SECONDS
        )

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
        """Claim what is due (as much as there is room for) and start each attempt on its own."""
        room = min(
            self.settings.RETRY_BATCH_SIZE, self.settings.WEBHOOK_MAX_IN_FLIGHT - len(self.tasks)
        )
        if room <= 0:
            return 0
        claims = await store.claim_due(
            self.sessions, batch=room, lease_seconds=self.settings.DELIVERY_LEASE_SECONDS
        )
        for claim in claims:
            await self.dispatch(claim)
        return len(claims)

    # -- one attempt ----------------------------------------------------------------------------
    async def deliver(
        self, claim: store.Claim, *, manual: bool
    ) -> tuple[Delivery, store.AttemptOutcome]:
        delivery = claim.delivery
        # From the queue the consumer's span is current; a retry continues the stored trace.
        with _tracer.start_as_current_span(
            f"webhook {delivery.event_type}", context=telemetry.parent_context(delivery.trace)
        ):
            outcome = await sender.attempt(
                self.webhooks,
                self.directory,
                merchant_id=delivery.merchant_id,
                webhook_id=delivery.event_id,
                body=delivery.body,
                limits=self.limits,
            )
            if outcome.succeeded:
                metrics.delivered(delivery, telemetry.exemplar())
        recorded = await self.recording(store.Attempt(claim, outcome, manual))
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
