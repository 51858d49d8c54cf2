"""Async database engine, sessions, database creation and Alembic migrations."""

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from weakref import WeakValueDictionary

import asyncpg
from alembic import command
from alembic.config import Config
from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import DateTime, event, exc, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.util import greenlet_spawn

from payplane_core.dberrors import Fault, classify

# Every service's DeclarativeBase uses these: times are always timezone-aware, dicts are JSONB.
TYPE_ANNOTATION_MAP: dict[Any, Any] = {datetime: DateTime(timezone=True), dict[str, Any]: JSONB}


def async_url(url: str) -> str:
    """``url`` with the asyncpg driver: a plain ``postgresql://`` URI (as CloudNativePG writes it
    into its ``<cluster>-app`` Secret) is used as is by naming the driver here."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


def create_engine(
    url: str, *, pool_size: int = 5, max_overflow: int = 5, pool_timeout: float = 3.0
) -> AsyncEngine:
    """At most ``pool_size + max_overflow`` connections (``DatabaseSettings.db_pool()``).

    All of them are kept once opened: SQLAlchemy closes an overflow connection as it comes
    back, so bursty load opened and closed connections all the time (a PostgreSQL backend
    fork, SCRAM authentication and asyncpg's type set-up each time). The most a process may
    hold, which the connection budget adds up, is unchanged; connections are opened lazily, as
    before."""
    engine = create_async_engine(
        async_url(url),
        pool_size=pool_size + max_overflow,
        max_overflow=0,
        pool_timeout=pool_timeout,
        # The connection used last goes out first: under light load the rest stay idle
        # (pinged before reuse) instead of each being used just often enough to be kept.
        pool_use_lifo=True,
    )
    _check_before_use(engine)
    _POOLS.engines[make_url(url).database or "default"] = engine
    return engine


# A pooled connection idle longer than this is pinged before it is handed out again.
IDLE_PING_SECONDS = 5.0


def _check_before_use(engine: AsyncEngine) -> None:
    """Never hand out a dead connection, without a round trip per checkout.

    SQLAlchemy's ``pool_pre_ping`` pings on every checkout, and on asyncpg outside autocommit
    that ping is three round trips (BEGIN; ";"; ROLLBACK), on every request. Here a connection
    whose socket the server closed (a restart, ``pg_terminate_backend``) is seen as closed
    without asking; one that sat idle a while (when a silently dropped peer is possible) is
    pinged as before; one that was in use moments ago goes out as it is. A dead one is
    replaced by a fresh connection before the caller sees it (the pool retries on
    ``DisconnectionError``), as with ``pool_pre_ping``.
    """

    @event.listens_for(engine.sync_engine, "checkin")
    def checked_in(dbapi_connection, record) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def checked_out(dbapi_connection, record, _proxy) -> None:
        idle_since = record.info.pop("idle_since", None)
        if idle_since is None:  # just connected
            return
        if dbapi_connection.driver_connection.is_closed():
            raise exc.DisconnectionError("connection closed by the server")
        if time.monotonic() - idle_since > IDLE_PING_SECONDS:
            try:
                dbapi_connection.ping()
            except Exception as error:  # noqa: BLE001 - any failure: use another connection
                raise exc.DisconnectionError(f"ping failed: {type(error).__name__}") from error


class _PoolCollector(Collector):
    """Connection pool saturation of this process's engines, read at scrape time."""

    def __init__(self) -> None:
        # Weak: an engine disposed and dropped (tests make many) leaves the scrape with it.
        self.engines: WeakValueDictionary[str, AsyncEngine] = WeakValueDictionary()

    def collect(self):
        connections = GaugeMetricFamily(
            "payplane_db_pool_connections", "Pooled connections", labels=["database", "state"]
        )
        waiting = GaugeMetricFamily(
            "payplane_db_pool_waiting", "Tasks waiting for a connection", labels=["database"]
        )
        limit = GaugeMetricFamily(
            "payplane_db_pool_max_connections", "Pool size plus overflow", labels=["database"]
        )
        for database, engine in list(self.engines.items()):
            pool = engine.pool
            connections.add_metric([database, "in_use"], pool.checkedout())
            connections.add_metric([database, "idle"], pool.checkedin())
            limit.add_metric([database], pool.size() + getattr(pool, "_max_overflow", 0))
            # The asyncio queue's waiting getters: SQLAlchemy has no public count of them.
            queue = getattr(getattr(pool, "_pool", None), "_queue", None)
            waiting.add_metric([database], len(getattr(queue, "_getters", ()) or ()))
        yield from (connections, waiting, limit)


_POOLS = _PoolCollector()
REGISTRY.register(_POOLS)


def session_factory(engine: AsyncEngine) -> async_sessionmaker:
    return async_sessionmaker(engine, expire_on_commit=False)


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


def asyncpg_dsn(url: str, database: str | None = None) -> str:
    """A SQLAlchemy URL (``postgresql+asyncpg://`` or plain) as a DSN ``asyncpg.connect``
    takes, for ``database`` instead of the URL's own if given."""
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


async def ensure_database(url: str) -> bool:
    """Create the database named in ``url`` if it does not exist; True if it was created."""
    name = make_url(url).database
    conn = await asyncpg.connect(asyncpg_dsn(url, "postgres"))
    try:
        if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            return False
        await conn.execute(f'CREATE DATABASE "{name}"')
        return True
    finally:
        await conn.close()


async def drop_database(url: str) -> None:
    name = make_url(url).database
    conn = await asyncpg.connect(asyncpg_dsn(url, "postgres"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def migrate(alembic_ini: Path, url: str, revision: str = "head") -> None:
    """Run a service's Alembic migrations (synchronously: call from a thread inside a loop)."""
    config = Config(str(alembic_ini))
    config.set_main_option("script_location", str(alembic_ini.parent / "migrations"))
    config.attributes["database_url"] = url
    command.upgrade(config, revision)


async def prepare_database(alembic_ini: Path, url: str) -> None:
    await ensure_database(url)
    await asyncio.to_thread(migrate, alembic_ini, url)


@asynccontextmanager
async def autocommit(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection where each statement is its own transaction: for work that is one atomic
    statement, it saves the BEGIN and COMMIT round trips.

    A connection of the engine's one pool (the connection budget counts no other), switched to
    autocommit at the driver for the block and back before it returns to the pool. SQLAlchemy's
    ``execution_options(isolation_level="AUTOCOMMIT")`` does the same through its connection
    characteristics (a greenlet hop, a level check, a reset callback at check-in), about 40 µs
    of CPU per use; an engine derived with ``engine.execution_options(...)`` shares the pool and
    pays the same per checkout. The driver's ``autocommit`` switch (SQLAlchemy's asyncpg
    adapter: no BEGIN is sent while it is on) is an attribute, with no I/O either way.
    ``tests/core/test_db_autocommit.py``: statements commit as they run, and the connection's
    next user gets transactions again (a rollback rolls back)."""
    async with engine.connect() as conn:
        if engine.dialect.driver != "asyncpg":  # only the asyncpg adapter is known to switch so
            yield await conn.execution_options(isolation_level="AUTOCOMMIT")
            return
        driver = conn.sync_connection.connection.dbapi_connection
        assert driver is not None  # just checked out
        driver.autocommit = True
        try:
            yield conn
        finally:
            # Before the check-in; the adapter restores the level it was connected with.
            driver.autocommit = False


@asynccontextmanager
async def driver_connection(engine: AsyncEngine) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection's own asyncpg connection, outside any transaction (each statement
    its own): for a hot path of single statements, without SQLAlchemy's execution layer.

    That layer (statement compilation cache, parameter and result processing, Row objects)
    cost about as much CPU as asyncpg itself for the notifier's two statements per webhook
    (0.65 ms of 1.1 ms per delivery). The connection still comes from the engine's pool (its
    checks before use and its metrics included). One that failed other than by the server's
    answer (lost, cancelled mid-statement) is discarded, not pooled again."""
    pooled = await engine.raw_connection()
    try:
        yield pooled.driver_connection
    except asyncpg.PostgresError as error:
        if classify(error) is Fault.INFRASTRUCTURE:  # e.g. the server shutting down: dead
            pooled.invalidate()
        else:  # the statement's own fault: the connection is fine
            await greenlet_spawn(pooled.close)
        raise
    except BaseException:
        pooled.invalidate()  # terminated at once: its protocol state is unknown
        raise
    else:
        await greenlet_spawn(pooled.close)  # as AsyncConnection.close does: it may await


_ASYNCPG = asyncpg_dialect()


class Statement:
    """SQL with ``:name`` parameters, for a driver connection (``driver_connection``).

    Compiled once, by SQLAlchemy's own compiler for its asyncpg dialect, into the ``$1``, ``$2``
    form asyncpg takes (a name used twice is one parameter), which is the SQL SQLAlchemy's
    execution layer would send on every call: statements stay readable with named
    parameters, and the hot path pays only for asyncpg. Values go to asyncpg as they are (no
    SQLAlchemy type processing): JSON as text, with a ``CAST(... AS jsonb)``; jsonb results
    come back decoded (the codec SQLAlchemy's dialect sets on its connections)."""

    __slots__ = ("names", "source", "sql")

    def __init__(self, sql: str) -> None:
        self.source = sql  # as written, with its names
        compiled = text(sql).compile(dialect=_ASYNCPG)
        self.sql: str = compiled.string
        self.names: tuple[str, ...] = tuple(compiled.positiontup or ())

    def args(self, params: Mapping[str, Any]) -> list[Any]:
        return [params[name] for name in self.names]

    async def fetch(self, conn: asyncpg.Connection, params: Mapping[str, Any]) -> list:
        return await conn.fetch(self.sql, *self.args(params))

    async def fetchrow(self, conn: asyncpg.Connection, params: Mapping[str, Any]):
        return await conn.fetchrow(self.sql, *self.args(params))

    async def fetchval(self, conn: asyncpg.Connection, params: Mapping[str, Any]) -> Any:
        return await conn.fetchval(self.sql, *self.args(params))

    async def execute(self, conn: asyncpg.Connection, params: Mapping[str, Any]) -> str:
        return await conn.execute(self.sql, *self.args(params))

    async def executemany(self, conn: asyncpg.Connection, many: list[Mapping[str, Any]]) -> None:
        await conn.executemany(self.sql, [self.args(params) for params in many])
