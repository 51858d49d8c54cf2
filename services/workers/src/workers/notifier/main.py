"""notifier entry point: ``uvicorn --factory workers.notifier.main:create_app`` (port 8112)."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from payplane_core import http
from payplane_core.app import create_service_app
from payplane_core.db import create_engine, ping, session_factory
from payplane_core.tasks import stop
from redis.asyncio import Redis

from workers.notifier import metrics
from workers.notifier.api import routes
from workers.notifier.config import NotifierSettings
from workers.notifier.directory import MerchantDirectory
from workers.notifier.service import Notifier
from workers.stats import refresh_forever


def create_app(settings: NotifierSettings | None = None, *, run_pipeline: bool = True) -> FastAPI:
    """``run_pipeline=False`` serves only the API (tests drive the notifier themselves)."""
    settings = settings or NotifierSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.DATABASE_URL, **settings.db_pool())
        redis = (
            Redis.from_url(settings.REDIS_URL, socket_timeout=1.0, socket_connect_timeout=1.0)
            if settings.REDIS_URL
            else None
        )
        directory = MerchantDirectory(
            base_url=settings.MERCHANTS_URL,
            auth=settings.internal_signer("merchants"),
            redis=redis,
            cache_seconds=settings.MERCHANT_CACHE_SECONDS,
        )
        # Webhooks go to merchants' servers: no redirects followed (sender), no proxies.
        webhooks = http.pool()
        notifier = Notifier(settings, session_factory(engine), directory, webhooks)
        app.state.engine = engine
        app.state.sessions = notifier.sessions
        app.state.notifier = notifier
        tasks = [
            asyncio.create_task(
                refresh_forever(
                    lambda: metrics.refresh(engine), every=settings.STATS_INTERVAL_SECONDS
                )
            )
        ]
        if run_pipeline:
            tasks.append(asyncio.create_task(notifier.run(), name="notifier"))
        yield
        await stop(*tasks)
        await webhooks.close()
        await directory.aclose()
        if redis is not None:
            await redis.aclose()
        await engine.dispose()

    async def database(app: FastAPI) -> None:
        await ping(app.state.engine)

    async def broker(app: FastAPI) -> None:
        await app.state.notifier.broker.check()

    checks = [("database", database)] + ([("broker", broker)] if run_pipeline else [])
    return create_service_app(
        settings=settings, routers=[routes.router], lifespan=lifespan, readiness=checks
    )
