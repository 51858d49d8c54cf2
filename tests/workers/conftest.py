import contextlib

import pytest
from payments.core.config import Settings as PaymentsSettings
from payments.main import create_app as create_payments_app
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support.db import fresh_database
from tests.support.internal import LOOPBACK_ALLOWLIST, internal
from tests.support.pipeline import (
    MERCHANTS_REDIS_URL,
    create_merchant,
    delete_topology,
    running_receiver,
    serve,
    topology_env,
    wait_until,
    worker_env,
)


@pytest.fixture(scope="package")
async def outbox_url():
    """A payments-schema database of our own (the relay reads the payments service's outbox)."""
    return await fresh_database("payments", "relay")


@pytest.fixture(scope="package")
async def outbox_db(outbox_url):
    engine = create_async_engine(outbox_url, pool_size=5)
    yield engine
    await engine.dispose()


@pytest.fixture
async def empty_outbox(outbox_db):
    async with outbox_db.begin() as conn:
        await conn.execute(
            text("TRUNCATE outbox_events, payment_events, payments, idempotency_keys CASCADE")
        )
    return outbox_db


@pytest.fixture(scope="package")
async def payments_app(outbox_url):
    app = create_payments_app(
        PaymentsSettings(
            DATABASE_URL=outbox_url,
            **internal("payments"),
            DB_POOL_SIZE=10,
            LOG_LEVEL="WARNING",
        )
    )
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def amqp_names():
    """Fresh exchange/queue names per test, deleted afterwards."""
    env = topology_env()
    yield env
    await delete_topology(env)


# -- the notifier's world: its database, the real merchants service, a real receiver ----------


@pytest.fixture(scope="package")
async def notifier_url():
    return await fresh_database("workers", "notifier")


@pytest.fixture(scope="package")
async def notifier_db(notifier_url):
    engine = create_async_engine(notifier_url, pool_size=5)
    yield engine
    await engine.dispose()


@pytest.fixture
async def empty_notifier(notifier_db):
    async with notifier_db.begin() as conn:
        await conn.execute(text("TRUNCATE deliveries, delivery_attempts"))
    return notifier_db


@pytest.fixture(scope="package")
async def merchants_url():
    """The real merchants service over real HTTP (worker processes call it too)."""
    from merchants.core.config import Settings as MerchantsSettings
    from merchants.main import create_app as create_merchants_app

    url = await fresh_database("merchants", "notifier_merchants")
    app = create_merchants_app(
        MerchantsSettings(
            DATABASE_URL=url,
            **internal("merchants"),
            ENCRYPTION_KEYS=["workers-test-encryption-key"],
            WEBHOOK_URL_ALLOWLIST=LOOPBACK_ALLOWLIST,
            REDIS_URL=MERCHANTS_REDIS_URL,
            LOG_LEVEL="WARNING",
        )
    )
    async with serve(app) as base_url:
        yield base_url


@pytest.fixture(scope="package")
async def receiver():
    async with running_receiver() as r:
        yield r


@pytest.fixture
async def merchant(receiver, merchants_url):
    """A fresh merchant whose webhook URL is the receiver; returns (merchant_id, name)."""
    receiver.reset()
    return await create_merchant(receiver, merchants_url)


@pytest.fixture
async def pipeline(
    empty_outbox, empty_notifier, outbox_url, notifier_url, merchants_url, amqp_names
):
    """Start an in-process relay and notifier with overrides: ``await pipeline(KEY=value)``."""
    from workers.notifier.config import NotifierSettings
    from workers.notifier.main import create_app as create_notifier_app
    from workers.relay.config import RelaySettings
    from workers.relay.main import create_app as create_relay_app

    async with contextlib.AsyncExitStack() as stack:

        async def start(**overrides):
            env = worker_env(outbox_url, notifier_url, merchants_url, amqp_names) | {
                k: str(v) for k, v in overrides.items()
            }
            relay = create_relay_app(RelaySettings(**env))
            notifier = create_notifier_app(NotifierSettings(**env))
            await stack.enter_async_context(relay.router.lifespan_context(relay))
            await stack.enter_async_context(notifier.router.lifespan_context(notifier))
            await wait_until(
                lambda: (
                    relay.state.relay.broker.connected and notifier.state.notifier.broker.connected
                ),
                within=10,
                what="workers connected",
            )
            return notifier

        yield start
