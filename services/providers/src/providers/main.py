"""providers service entry point: ``uvicorn --factory providers.main:create_app``.

The process serves the internal registry API and, in its lifespan, runs the consumer of
``payment.pending`` events and the provider health probe.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from payplane_core import http
from payplane_core.app import create_service_app
from payplane_core.crypto import SecretBox
from payplane_core.db import create_engine, ping, session_factory
from payplane_core.tasks import stop
from redis.asyncio import Redis

from providers import consumer, health
from providers.api.routes import providers, reconciliation, secrets
from providers.core.config import Settings
from providers.flow import FlowDeps
from providers.platform import MerchantsClient, PaymentsClient


def _internal_client(settings: Settings, base_url: str, audience: str) -> httpx.AsyncClient:
    return settings.internal_http(
        audience, base_url, timeout=settings.INTERNAL_CALL_TIMEOUT_SECONDS
    )


@asynccontextmanager
async def _flow_deps(settings: Settings) -> AsyncIterator[FlowDeps]:
    """Database, Redis and the HTTP clients the routing flow uses; all closed on the way out."""
    engine = create_engine(settings.DATABASE_URL, **settings.db_pool())
    redis = Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(engine.dispose)
        stack.push_async_callback(redis.aclose)
        to_providers = await stack.enter_async_context(
            http.client(limits=httpx.Limits(max_connections=200))
        )
        payments_http = await stack.enter_async_context(
            _internal_client(settings, settings.PAYMENTS_URL, "payments")
        )
        merchants_http = (
            await stack.enter_async_context(
                _internal_client(settings, settings.MERCHANTS_URL, "merchants")
            )
            if settings.MERCHANTS_URL
            else None
        )
        yield FlowDeps(
            engine=engine,
            sessions=session_factory(engine),
            redis=redis,
            http=to_providers,
            payments=PaymentsClient(payments_http),
            merchants=MerchantsClient(merchants_http, redis),
            box=SecretBox(settings.ENCRYPTION_KEYS),
            breaker_prefix=settings.BREAKER_PREFIX,
            breaker_window_seconds=settings.BREAKER_WINDOW_SECONDS,
            unhealthy=set(),
            health={},
        )


def _background_tasks(
    settings: Settings, flow: FlowDeps, consumer_ready: asyncio.Event
) -> list[asyncio.Task]:
    """The health probe and (unless disabled) the consumer, which must stay last."""
    probe = health.probe_forever(
        flow.http, flow.sessions, flow.unhealthy, flow.health, every=settings.HEALTH_PROBE_SECONDS
    )
    tasks = [asyncio.create_task(probe)]
    if settings.CONSUMER_ENABLED:
        tasks.append(asyncio.create_task(consumer.consume(flow, settings, ready=consumer_ready)))
    return tasks


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with _flow_deps(settings) as flow:
            app.state.engine, app.state.sessions = flow.engine, flow.sessions
            app.state.redis, app.state.flow = flow.redis, flow
            app.state.consumer_ready = asyncio.Event()
            app.state.tasks = _background_tasks(settings, flow, app.state.consumer_ready)
            try:
                yield
            finally:
                await stop(*app.state.tasks)

    async def database(app: FastAPI) -> None:
        await ping(app.state.engine)

    async def redis_ok(app: FastAPI) -> None:
        await app.state.redis.ping()

    async def consumer_ok(app: FastAPI) -> None:
        if settings.CONSUMER_ENABLED:
            task = app.state.tasks[-1]
            if task.done() or not app.state.consumer_ready.is_set():
                raise RuntimeError("consumer not running")

    return create_service_app(
        settings=settings,
        routers=[providers.router, reconciliation.router, secrets.router],
        lifespan=lifespan,
        readiness=[("database", database), ("redis", redis_ok), ("consumer", consumer_ok)],
    )
