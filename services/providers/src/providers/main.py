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
from payplane_core.app import create_service_app
from payplane_core.crypto import SecretBox
from payplane_core.db import create_engine, ping, session_factory
from redis.asyncio import Redis

from providers import consumer, health
from providers.api.routes import providers, reconciliation
from providers.core.config import Settings
from providers.flow import FlowDeps
from providers.platform import MerchantsClient, PaymentsClient


def _internal_client(settings: Settings, base_url: str, audience: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        auth=settings.internal_signer(audience),
        timeout=settings.INTERNAL_CALL_TIMEOUT_SECONDS,
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.DATABASE_URL, **settings.db_pool())
        sessions = session_factory(engine)
        redis = Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
        to_providers = httpx.AsyncClient(limits=httpx.Limits(max_connections=200))
        payments_http = _internal_client(settings, settings.PAYMENTS_URL, "payments")
        merchants_http = (
            _internal_client(settings, settings.MERCHANTS_URL, "merchants")
            if settings.MERCHANTS_URL
            else None
        )
        flow = FlowDeps(
            engine=engine,
            sessions=sessions,
            redis=redis,
            http=to_providers,
            payments=PaymentsClient(payments_http),
            merchants=MerchantsClient(merchants_http),
            box=SecretBox(settings.ENCRYPTION_KEYS),
            breaker_prefix=settings.BREAKER_PREFIX,
            breaker_window_seconds=settings.BREAKER_WINDOW_SECONDS,
            unhealthy=set(),
            health={},
        )
        app.state.engine, app.state.sessions, app.state.redis = engine, sessions, redis
        app.state.flow = flow
        app.state.consumer_ready = asyncio.Event()
        tasks = [
            asyncio.create_task(
                health.probe_forever(
                    to_providers,
                    sessions,
                    flow.unhealthy,
                    flow.health,
                    every=settings.HEALTH_PROBE_SECONDS,
                )
            )
        ]
        if settings.CONSUMER_ENABLED:
            tasks.append(
                asyncio.create_task(
                    consumer.consume(flow, settings, ready=app.state.consumer_ready)
                )
            )
        app.state.tasks = tasks
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            for client in (to_providers, payments_http, merchants_http):
                if client is not None:
                    await client.aclose()
            await redis.aclose()
            await engine.dispose()

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
        routers=[providers.router, reconciliation.router],
        lifespan=lifespan,
        readiness=[("database", database), ("redis", redis_ok), ("consumer", consumer_ok)],
    )
