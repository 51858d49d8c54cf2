import asyncio
import json
from dataclasses import dataclass

import aio_pika
import httpx
import pytest
from payments.core.config import Settings as PaymentsSettings
from payments.main import create_app as payments_app
from payplane_core import messaging
from providers.core.config import Settings
from providers.main import create_app
from redis.asyncio import Redis
from simulator.core.config import Settings as SimulatorSettings
from simulator.main import create_app as simulator_app
from webhooks.core.config import Settings as WebhooksSettings
from webhooks.main import create_app as webhooks_app

from tests.support.db import fresh_database
from tests.support.internal import GatewayAuth, internal
from tests.support.live import serve
from tests.support.providers_flow import ENCRYPTION_KEY, ingress_stand_in, whsec

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/payplane_test"
EXCHANGE = "p6test.payments"
QUEUE = "p6test.providers.payment-pending.quorum"
DEAD_LETTER = "p6test.providers.payment-pending.dead-letter"
TOPOLOGY = messaging.Topology(
    exchange=EXCHANGE,
    queues=(
        messaging.ConsumerQueue(
            name=QUEUE,
            binding="payment.pending",
            dead_letter_exchange=DEAD_LETTER,
            dead_letter_queue=DEAD_LETTER,
            # The classic queue of earlier runs in this vhost: drained and deleted.
            replaces="p6test.providers.payment-pending",
        ),
    ),
)
REDIS_URL = "redis://127.0.0.1:6379/2"
BREAKER_PREFIX = "p6test:cb:provider:"
SIMULATORS = {"sim-a": 1, "sim-b": 2}  # name -> priority
SIM_KEYS = {name: f"sk_test_{name}_key" for name in SIMULATORS}
SIM_SECRETS = {name: whsec(f"providers-test-{name}") for name in SIMULATORS}
OPEN_SECONDS = 2
THRESHOLD = 2


@pytest.fixture(scope="package")
async def payments_url():
    url = await fresh_database("payments", "payments_providers")
    app = payments_app(PaymentsSettings(DATABASE_URL=url, **internal("payments")))
    async with serve(app) as base:
        yield base


@pytest.fixture(scope="package")
async def providers_db():
    return await fresh_database("providers", "providers")


@pytest.fixture(scope="package")
async def amqp():
    connection = await aio_pika.connect(AMQP_URL)
    channel = await connection.channel()
    exchange, queues = await messaging.declare(channel, TOPOLOGY)
    await messaging.retire_replaced(connection, TOPOLOGY)
    dead = await channel.declare_queue(DEAD_LETTER, passive=True)
    for queue in (queues[QUEUE], dead):
        await queue.purge()  # leftovers of an interrupted earlier run
    yield Broker(exchange, dead)
    await connection.close()


@dataclass
class Broker:
    exchange: aio_pika.abc.AbstractExchange
    dead_letters: aio_pika.abc.AbstractQueue

    async def dead_lettered(self, message_id: str, *, within: float = 30) -> dict:
        """Wait for ``message_id`` in the dead-letter queue; returns its headers."""
        async with asyncio.timeout(within):
            while True:
                message = await self.dead_letters.get(no_ack=True, fail=False)
                if message is not None and message.message_id == message_id:
                    return message.headers or {}
                if message is None:
                    await asyncio.sleep(0.1)


@pytest.fixture(scope="package")
async def redis():
    client = Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


async def reset_breakers(redis) -> None:
    keys = [k async for k in redis.scan_iter(f"{BREAKER_PREFIX}*")]
    if keys:
        await redis.delete(*keys)


@pytest.fixture(scope="package")
async def platform(payments_url, providers_db, amqp, redis):
    """payments, providers (consuming), webhooks, the ingress stand-in and two simulators,
    each on a real port; the simulators' callbacks go through the stand-in to webhooks."""
    await reset_breakers(redis)
    providers_settings = Settings(
        DATABASE_URL=providers_db,
        **internal("providers"),
        ENCRYPTION_KEYS=[ENCRYPTION_KEY],
        REDIS_URL=REDIS_URL,
        AMQP_URL=AMQP_URL,
        AMQP_EXCHANGE=EXCHANGE,
        AMQP_QUEUE=QUEUE,
        AMQP_DEAD_LETTER=DEAD_LETTER,
        PAYMENTS_URL=payments_url,
        BREAKER_PREFIX=BREAKER_PREFIX,
        RETRY_DELAY_SECONDS=0.3,
        HEALTH_PROBE_SECONDS=60,
    )
    logs_url = await fresh_database("webhooks", "logs_providers")
    async with serve(create_app(providers_settings)) as providers_url:
        webhooks = webhooks_app(
            WebhooksSettings(
                DATABASE_URL=logs_url,
                **internal("webhooks"),
                PAYMENTS_URL=payments_url,
                PROVIDERS_URL=providers_url,
            )
        )
        async with (
            serve(webhooks) as webhooks_url,
            serve(ingress_stand_in(webhooks_url)) as ingress_url,
        ):
            sims = {}
            async with _simulators(ingress_url, sims):
                yield Platform(payments_url, providers_url, sims, ingress_url, webhooks_url)


class _simulators:
    def __init__(self, ingress_url: str, sims: dict) -> None:
        self.ingress_url, self.sims, self.contexts = ingress_url, sims, []

    async def __aenter__(self):
        for name in SIMULATORS:
            app = simulator_app(
                SimulatorSettings(
                    SERVICE_NAME=name,
                    SIM_API_KEY=SIM_KEYS[name],
                    SIM_WEBHOOK_SECRET=SIM_SECRETS[name],
                    SIM_WEBHOOK_URL=f"{self.ingress_url}/api/v1/payments/webhook",
                    SIM_CALLBACK_DELAY_MS=20,
                    SIM_FAIL_DELAY_MS=200,
                    SIM_CALLBACK_BACKOFF_BASE_SECONDS=0.2,
                )
            )
            context = serve(app)
            self.sims[name] = await context.__aenter__()
            self.contexts.append(context)
        return self.sims

    async def __aexit__(self, *exc):
        for context in reversed(self.contexts):
            await context.__aexit__(*exc)


class Platform:
    def __init__(self, payments_url, providers_url, sims, ingress_url, webhooks_url):
        self.payments_url, self.providers_url, self.sims = payments_url, providers_url, sims
        self.ingress_url = ingress_url  # where providers' callbacks go
        self.webhooks_url = webhooks_url


@pytest.fixture(scope="package")
async def registry(platform):
    async with httpx.AsyncClient(
        base_url=platform.providers_url,
        auth=GatewayAuth(audience="providers", caller="cli", scopes=[]),
    ) as client:
        for name, priority in SIMULATORS.items():
            response = await client.put(
                f"/internal/v1/providers/{name}",
                json={
                    "endpoint": platform.sims[name],
                    "api_key": SIM_KEYS[name],
                    "webhook_secret": SIM_SECRETS[name],
                    "priority": priority,
                    "currencies": ["EUR", "USD"],
                    "timeout_ms": 500,
                    "failure_threshold": THRESHOLD,
                    "open_seconds": OPEN_SECONDS,
                },
            )
            assert response.status_code in (200, 201), response.text
        yield client


@pytest.fixture
async def sims(platform, registry, redis):
    """Per-simulator clients (provider API keys), faults cleared and breakers closed."""
    clients = {
        name: httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {SIM_KEYS[name]}"})
        for name, url in platform.sims.items()
    }
    await reset_breakers(redis)
    for client in clients.values():
        await client.put("/v1/control", json={})
    yield clients
    for client in clients.values():
        await client.put("/v1/control", json={})
        await client.aclose()
    await reset_breakers(redis)


class Payments:
    def __init__(self, merchant: httpx.AsyncClient, broker: Broker) -> None:
        self.merchant, self.broker, self.exchange = merchant, broker, broker.exchange

    async def create(self, amount: int = 1000, currency: str = "EUR", **extra) -> dict:
        response = await self.merchant.post(
            "/api/v1/payments", json={"amount": amount, "currency": currency} | extra
        )
        assert response.status_code == 201, response.text
        return response.json()

    async def publish(
        self, payment: dict, *, body: bytes | None = None, message_id: str | None = None
    ) -> None:
        """What the outbox relay publishes for a new payment."""
        event = {"type": "payment.pending", "timestamp": payment["created_at"], "data": payment}
        await self.exchange.publish(
            aio_pika.Message(
                body or json.dumps(event).encode(),
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                message_id=message_id or f"evt_test_{payment['id']}",
            ),
            routing_key="payment.pending",
        )

    async def submit(self, amount: int = 1000, **extra) -> dict:
        payment = await self.create(amount, **extra)
        await self.publish(payment)
        return payment

    async def tracking(self, payment_id: str) -> dict:
        return (await self.merchant.get(f"/api/v1/payments/{payment_id}/tracking")).json()

    async def wait_status(self, payment_id: str, *statuses: str, timeout: float = 10) -> dict:  # noqa: ASYNC109
        async with asyncio.timeout(timeout):
            while True:
                story = await self.tracking(payment_id)
                if story["status"] in statuses:
                    return story
                await asyncio.sleep(0.05)


@pytest.fixture
async def payments(platform, amqp):
    async with httpx.AsyncClient(
        base_url=platform.payments_url,
        auth=GatewayAuth(audience="payments", merchant_id="mer_providers_test"),
    ) as c:
        yield Payments(c, amqp)
