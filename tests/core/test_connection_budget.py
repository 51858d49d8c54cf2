"""The PostgreSQL connection budget: what every process of ``make up`` may open, added up from
the real stack environment and Settings, against the real server's ``max_connections``; and
running out of connections answers a 503 problem with Retry-After, never a 500."""

import asyncio

import asyncpg
import httpx
from fastapi import APIRouter
from merchants.core.config import Settings as MerchantsSettings
from payments.core.config import Settings as PaymentsSettings
from payplane_cli.stack import PROCESSES, Stack
from payplane_core.app import create_service_app
from payplane_core.db import create_engine, drop_database, ensure_database
from payplane_core.settings import DatabaseSettings, ServiceSettings
from providers.core.config import Settings as ProvidersSettings
from sqlalchemy import text
from webhooks.core.config import Settings as WebhooksSettings
from workers.notifier.config import NotifierSettings
from workers.relay.config import RelaySettings

from tests.support.internal import GatewayAuth, internal

PG = "postgresql+asyncpg://payplane:payplane@127.0.0.1:5432"
SETTINGS: dict[str, type[DatabaseSettings]] = {
    "payments": PaymentsSettings,
    "merchants": MerchantsSettings,
    "providers": ProvidersSettings,
    "webhooks": WebhooksSettings,
    "relay": RelaySettings,
    "notifier": NotifierSettings,
}


def stack_budget(stack: Stack) -> dict[str, int]:
    """Most connections each process of the stack may hold, from its real environment."""
    budget = {}
    for name, process in PROCESSES.items():
        env = stack.process_env(process)
        if not any(key.endswith("DATABASE_URL") for key in env):
            continue
        assert name in SETTINGS, f"{name} has a database but no place in the budget"
        settings = SETTINGS[name](_env_file=None, **env)
        budget[name] = settings.db_max_connections
    return budget


async def server_limits() -> tuple[int, int]:
    conn = await asyncpg.connect("postgresql://payplane:payplane@127.0.0.1:5432/postgres")
    try:
        most = int(await conn.fetchval("SHOW max_connections"))
        reserved = int(await conn.fetchval("SHOW superuser_reserved_connections"))
    finally:
        await conn.close()
    return most, reserved


async def test_make_up_fits_twice_under_max_connections(tmp_path):
    budget = stack_budget(Stack(secrets_dir=tmp_path))
    assert set(budget) == set(SETTINGS)
    most, reserved = await server_limits()
    # Headroom: the test stack runs beside `make up` on the same server, and migrations, psql
    # and the unit tests need a few more.
    headroom = 10
    assert 2 * sum(budget.values()) + headroom <= most - reserved, budget


def app_with_one_connection(url: str, held: asyncio.Event, release: asyncio.Event):
    router = APIRouter()
    engine = create_engine(url, pool_size=1, max_overflow=0, pool_timeout=0.2)

    @router.post("/hold")
    async def hold() -> dict:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            held.set()
            await release.wait()
        return {"ok": True}

    @router.post("/run")
    async def run() -> dict:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return {"ok": True}

    settings = ServiceSettings(
        SERVICE_NAME="budget", INTERNAL_ALLOWED_CALLERS=["cli"], **internal("budget")
    )
    return create_service_app(settings=settings, routers=[router]), engine


def client(app) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(
        transport=transport,
        base_url="http://svc.test",
        auth=GatewayAuth(audience="budget", caller="cli"),
    )


def assert_retry_later(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_exhausted_pool_is_503_with_retry_after():
    held, release = asyncio.Event(), asyncio.Event()
    app, engine = app_with_one_connection(f"{PG}/postgres", held, release)
    try:
        async with client(app) as http:
            holder = asyncio.create_task(http.post("/hold"))
            await held.wait()
            assert_retry_later(await http.post("/run"))
            release.set()
            assert (await holder).status_code == 200
            assert (await http.post("/run")).status_code == 200
    finally:
        await engine.dispose()


async def test_server_out_of_connection_slots_is_503_with_retry_after():
    # PostgreSQL refusing a connection for lack of slots (SQLSTATE 53300), as when
    # max_connections is spent: a database that allows no connection at all.
    url = f"{PG}/payplane_unit_no_slots"
    await drop_database(url)
    await ensure_database(url)
    admin = await asyncpg.connect("postgresql://payplane:payplane@127.0.0.1:5432/postgres")
    try:
        await admin.execute('ALTER DATABASE "payplane_unit_no_slots" CONNECTION LIMIT 0')
        app, engine = app_with_one_connection(url, asyncio.Event(), asyncio.Event())
        async with client(app) as http:
            assert_retry_later(await http.post("/run"))
        await engine.dispose()
    finally:
        await admin.close()
        await drop_database(url)
