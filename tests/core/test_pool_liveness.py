"""Pooled connections: a dead one is never handed out (the caller gets a working connection),
yet a connection in steady use costs no ping round trip per checkout."""

import asyncpg
from payplane_core import db
from payplane_core.db import create_engine
from sqlalchemy import text

from tests.support.pipeline import wait_until

URL = "postgresql+asyncpg://payplane:payplane@127.0.0.1:5432/postgres"
DSN = "postgresql://payplane:payplane@127.0.0.1:5432/postgres"


async def _backend_pid(engine) -> int:
    async with engine.connect() as conn:
        return await conn.scalar(text("SELECT pg_backend_pid()"))


async def _terminate(pid: int) -> None:
    """Kill that backend, and wait until PostgreSQL no longer lists it."""
    admin = await asyncpg.connect(DSN)
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)

        async def gone() -> bool:
            listed = "SELECT count(*) FROM pg_stat_activity WHERE pid = $1"
            return not await admin.fetchval(listed, pid)

        await wait_until(gone, within=10, what="the backend to exit")
    finally:
        await admin.close()


async def _pooled_driver_connection(engine) -> asyncpg.Connection:
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        return raw.driver_connection


async def test_a_connection_closed_by_the_server_is_replaced_without_an_error():
    engine = create_engine(URL, pool_size=1, max_overflow=0)
    try:
        first = await _backend_pid(engine)
        driver = await _pooled_driver_connection(engine)
        await _terminate(first)
        # The client has seen the server close it.
        await wait_until(driver.is_closed, within=10, what="the client to see the close")
        assert await _backend_pid(engine) != first
    finally:
        await engine.dispose()


async def test_an_idle_connection_is_pinged_and_replaced_when_dead(monkeypatch):
    # Every checkout counts as idle: the ping runs, whether or not the close was noticed yet.
    monkeypatch.setattr(db, "IDLE_PING_SECONDS", 0.0)
    engine = create_engine(URL, pool_size=1, max_overflow=0)
    try:
        first = await _backend_pid(engine)
        await _terminate(first)
        assert await _backend_pid(engine) != first
    finally:
        await engine.dispose()


async def test_a_connection_in_steady_use_is_not_pinged(monkeypatch):
    pings = []
    engine = create_engine(URL, pool_size=1, max_overflow=0)
    try:
        await _backend_pid(engine)
        async with engine.connect() as conn:
            adapted = (await conn.get_raw_connection()).dbapi_connection
        real_ping = type(adapted).ping

        def counting_ping(self):
            pings.append(self)
            return real_ping(self)

        monkeypatch.setattr(type(adapted), "ping", counting_ping)
        for _ in range(3):
            await _backend_pid(engine)
        assert pings == []
        monkeypatch.setattr(db, "IDLE_PING_SECONDS", 0.0)
        await _backend_pid(engine)
        assert pings == [adapted]  # the same check, once idle
    finally:
        await engine.dispose()
