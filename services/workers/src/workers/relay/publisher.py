"""The relay loop: claim a batch, publish it with publisher confirms, record the outcome.

It claims again at once while batches come back full; otherwise it waits for the first of: a
NOTIFY of an outbox insert (``listener``), the next retry it scheduled itself coming due, the
fallback poll, or the broker connection closing.

A confirmed batch is marked published by the next claim's statement (``outbox.claim_batch``),
or on its own once ``RELAY_MARK_DELAY_SECONDS`` pass without one: under load one statement per
batch instead of two. Until then its rows stay leased to this relay, so nobody else publishes
them; if the relay dies first, they are published again after the lease, as when it dies
between the confirm and the mark (the consumers drop a repeated event by its id).
"""

import asyncio
import contextlib
import heapq
import logging
from datetime import UTC, datetime

import aio_pika
from aio_pika.abc import AbstractConnection, AbstractExchange
from opentelemetry import propagate, trace
from payplane_core import messaging
from payplane_core.events import PaymentEvent
from payplane_core.tasks import stop
from payplane_core.telemetry import tracer
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy.ext.asyncio import AsyncEngine

from workers import amqp, topology
from workers.relay import outbox
from workers.relay.config import RelaySettings
from workers.relay.listener import Listener

log = logging.getLogger(__name__)
_tracer = tracer(__name__)

PUBLISHED = Counter("payplane_relay_published_total", "Outbox events published and confirmed")
PUBLISH_ERRORS = Counter("payplane_relay_publish_errors_total", "Publish attempts that failed")
GAVE_UP = Counter("payplane_relay_failed_total", "Outbox events marked failed (terminal)")
BACKLOG = Gauge("payplane_outbox_backlog_events", "Outbox events not yet published")
OLDEST = Gauge(
    "payplane_outbox_oldest_pending_age_seconds", "Age of the oldest unpublished outbox event"
)
LAG = Histogram(
    "payplane_relay_publish_lag_seconds",
    "From the event's commit to the broker's confirm",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
BATCH = Histogram(
    "payplane_relay_batch_seconds",
    "Time to publish one claimed batch and record its failures",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
RETRY_SLACK_SECONDS = 0.1
WAKEUPS = Counter(
    "payplane_relay_wakeups_total",
    "Claims after waiting, by what ended the wait (notify, retry, poll)",
    ["reason"],
)


def build_message(event: outbox.ClaimedEvent) -> aio_pika.Message:
    """Persistent, ``message_id`` = event id; request id and the current trace context (the
    relay's span, or the row's own context when the relay does not trace) in the headers."""
    headers = {
        "x-request-id": str((event.headers or {}).get("x-request-id") or ""),
        "payment-id": event.payment_id,
        "merchant-id": event.merchant_id,
    }
    propagate.inject(headers)
    return aio_pika.Message(
        body=event.body.encode(),
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=event.id,
        type=event.event_type,
        timestamp=event.created_at,
        headers=headers,
    )


class Relay:
    def __init__(self, settings: RelaySettings, engine: AsyncEngine) -> None:
        self.settings = settings
        self.engine = engine
        self.topology = topology.for_relay(settings)
        self.broker = amqp.BrokerState()
        self.wake = asyncio.Event()
        self.listener = Listener(
            settings.listen_database_url,
            self.wake,
            check_every=settings.RELAY_LISTEN_CHECK_SECONDS,
            reconnect_max=settings.RELAY_LISTEN_RECONNECT_MAX_SECONDS,
            connect_timeout=settings.DB_POOL_TIMEOUT_SECONDS,
        )
        self._retries: list[float] = []  # loop times at which rows this relay failed come due
        self._claimed_at = 0.0  # loop time the last claim began
        self._confirmed: list[str] = []  # published and confirmed, not yet marked so

    async def run(self) -> None:
        listener = asyncio.create_task(self.listener.run(), name="relay-listener")
        try:
            await amqp.run_forever(self.settings, self._session, self.broker)
        finally:
            await stop(listener)
            # Best effort: what stays unmarked is published again after its lease.
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self.settings.DB_POOL_TIMEOUT_SECONDS):
                    await self.mark_confirmed()

    async def mark_confirmed(self) -> None:
        """Mark the confirmed rows published now, without waiting for the next claim."""
        await outbox.mark_published(self.engine, ids=self._confirmed)
        self._confirmed = []

    async def _session(self, connection: AbstractConnection) -> None:
        # on_return_raises: an unroutable message is a failure, not a silent drop.
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange, _ = await messaging.declare(channel, self.topology)
        await messaging.retire_replaced(connection, self.topology)
        self.broker.connected = True
        log.info("relay connected", extra={"exchange": self.topology.exchange})
        for source in (connection, channel):  # a wait ends when the broker goes away
            source.close_callbacks.add(lambda *_: self.wake.set())
        while True:
            if connection.is_closed or channel.is_closed:
                raise ConnectionError("broker channel closed")
            self.wake.clear()  # before the claim: a notification during it is not lost
            self._claimed_at = asyncio.get_running_loop().time()
            self._drop_due_retries()
            claimed = await self.relay_once(exchange)
            if claimed < self.settings.RELAY_BATCH_SIZE:
                await self._wait()

    async def _wait(self) -> None:
        """Until a notification (coalesced), a retry of ours or the fallback poll; confirmed
        rows are marked on their own if none comes within ``RELAY_MARK_DELAY_SECONDS``."""
        loop = asyncio.get_running_loop()
        timeout, reason = self.settings.RELAY_FALLBACK_POLL_SECONDS, "poll"
        if self._retries:
            # A little after the first retry is due, so those due just after it join its claim.
            due = self._retries[0] + RETRY_SLACK_SECONDS - loop.time()
            if due < timeout:
                timeout, reason = max(0.0, due), "retry"
        until = loop.time() + timeout
        mark_within = min(timeout, self.settings.RELAY_MARK_DELAY_SECONDS)
        if self._confirmed and not await self._woken(mark_within):
            await self.mark_confirmed()
        if not await self._woken(until - loop.time()):
            WAKEUPS.labels(reason).inc()
            return
        WAKEUPS.labels("notify").inc()
        # Coalesce: not sooner than the minimum interval after the last claim began.
        rest = self._claimed_at + self.settings.RELAY_NOTIFY_MIN_INTERVAL_SECONDS - loop.time()
        if rest > 0:
            await asyncio.sleep(rest)

    async def _woken(self, seconds: float) -> bool:
        """Whether ``wake`` is set within ``seconds``."""
        try:
            async with asyncio.timeout(max(0.0, seconds)):
                await self.wake.wait()
        except TimeoutError:
            return False
        return True

    def _drop_due_retries(self) -> None:
        """The claim about to run picks up every retry due by now."""
        now = asyncio.get_running_loop().time()
        while self._retries and self._retries[0] <= now:
            heapq.heappop(self._retries)

    async def relay_once(self, exchange: AbstractExchange) -> int:
        """One batch; returns how many rows were claimed."""
        events = await outbox.claim_batch(
            self.engine,
            batch=self.settings.RELAY_BATCH_SIZE,
            lease_seconds=self.settings.RELAY_LEASE_SECONDS,
            published=self._confirmed,
        )
        self._confirmed = []
        if not events:
            return 0
        with BATCH.time():
            results = await asyncio.gather(
                *(self._publish(exchange, event) for event in events), return_exceptions=True
            )
            published = [e.id for e, r in zip(events, results, strict=True) if r is None]
            failures = {
                e.id: (e.attempts, _describe(r))
                for e, r in zip(events, results, strict=True)
                if r is not None
            }
            self._confirmed = published  # marked by the next claim (or on their own, soon)
            await self._record_failures(failures)
        PUBLISHED.inc(len(published))
        confirmed_at = datetime.now(UTC)
        for event, result in zip(events, results, strict=True):
            if result is None:
                LAG.observe((confirmed_at - event.created_at).total_seconds())
        if failures:
            # The channel may be gone: let the session loop check and reconnect.
            log.warning("publish failures", extra={"count": len(failures)})
        return len(events)

    async def _publish(self, exchange: AbstractExchange, event: outbox.ClaimedEvent) -> None:
        # Only the contract's events leave: a row that is not one fails (and is retried, then
        # marked failed) here, instead of poisoning every consumer's queue.
        PaymentEvent.parse(event.body)
        # With confirms, publish() returns only after the broker has the message (persisted,
        # since the queue is durable and the message persistent), and raises on nack/return.
        # The trace stored with the row continues here (standard propagator, W3C headers);
        # aio-pika's instrumentation adds its publish span under this one.
        parent = propagate.extract(event.headers or {})
        with _tracer.start_as_current_span(
            f"outbox {event.event_type}", context=parent, kind=trace.SpanKind.PRODUCER
        ):
            await exchange.publish(
                build_message(event),
                routing_key=event.routing_key,
                mandatory=True,
                timeout=self.settings.RELAY_PUBLISH_TIMEOUT_SECONDS,
            )

    async def refresh_stats(self) -> None:
        count, oldest = await outbox.pending_stats(self.engine)
        BACKLOG.set(count)
        OLDEST.set(oldest)

    async def _record_failures(self, failures: dict[str, tuple[int, str]]) -> None:
        if not failures:
            return
        PUBLISH_ERRORS.inc(len(failures))
        limit = self.settings.RELAY_MAX_ATTEMPTS
        given_up = sum(1 for attempts, _ in failures.values() if attempts >= limit)
        GAVE_UP.inc(given_up)
        delays = await outbox.mark_failed(
            self.engine,
            failures=failures,
            max_attempts=self.settings.RELAY_MAX_ATTEMPTS,
            base=self.settings.RELAY_BACKOFF_BASE_SECONDS,
            cap=self.settings.RELAY_BACKOFF_MAX_SECONDS,
        )
        # Counted from now, after the mark: never before the row's own next_retry_at.
        now = asyncio.get_running_loop().time()
        for delay in delays:
            heapq.heappush(self._retries, now + delay)


def _describe(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}"
    return text if len(text) < 2000 else text[:2000]
