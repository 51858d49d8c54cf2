import pytest
from payments.core.config import Settings as PaymentsSettings
from payments.main import create_app as create_payments_app
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from support.db import fresh_database
from support.payments import SECRET
from support.pipeline import delete_topology, topology_env


@pytest.fixture(scope="session")
async def outbox_url():
    """A payments-schema database of our own (the relay reads the payments service's outbox)."""
    return await fresh_database("payments", "relay")


@pytest.fixture(scope="session")
async def outbox_db(outbox_url):
    engine = create_async_engine(outbox_url, pool_size=5)
    yield engine
    await engine.dispose()


@pytest.fixture
async def empty_outbox(outbox_db):
    async with outbox_db.begin() as conn:
        await conn.execute(
            text("TRUNCATE outbox_events, payment_events, payments, idempotency_keys")
        )
    return outbox_db


@pytest.fixture(scope="session")
async def payments_app(outbox_url):
    app = create_payments_app(
        PaymentsSettings(
            DATABASE_URL=outbox_url, INTERNAL_SIGNING_SECRETS=[SECRET], DB_POOL_SIZE=10
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
