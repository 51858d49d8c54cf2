"""notifier entry point: ``uvicorn --factory workers.notifier.main:create_app`` (port 8112)."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from payplane_core.app import create_service_app
from payplane_core.db import create_engine, ping, session_factory

from workers.notifier.api import routes
from workers.notifier.config import NotifierSettings
from workers.notifier.directory import MerchantDirectory
from workers.notifier.service import Notifier


def create_app(settings: NotifierSettings | None = None, *, run_pipeline: bool = True) -> FastAPI:
    """``run_pipeline=False`` serves only the API (tests drive the notifier themselves)."""
    settings = settings or NotifierSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.DATABASE_URL, pool_size=settings.DB_POOL_SIZE)
        directory = MerchantDirectory(
            base_url=settings.MERCHANTS_URL,
            signing_secret=settings.INTERNAL_SIGNING_SECRETS[0],
            cache_seconds=settings.MERCHANT_CACHE_SECONDS,
        )
        # Webhooks go to merchants' servers: no redirects followed, no environment proxies.
        client = httpx.AsyncClient(
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        )
        notifier = Notifier(settings, session_factory(engine), directory, client)
        app.state.engine = engine
        app.state.sessions = notifier.sessions
        app.state.notifier = notifier
        task = asyncio.create_task(notifier.run(), name="notifier") if run_pipeline else None
        yield
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await client.aclose()
        await directory.aclose()
        await engine.dispose()

    async def database(app: FastAPI) -> None:
        await ping(app.state.engine)

    async def broker(app: FastAPI) -> None:
        await app.state.notifier.broker.check()

    checks = [("database", database)] + ([("broker", broker)] if run_pipeline else [])
    return create_service_app(
        settings=settings, routers=[routes.router], lifespan=lifespan, readiness=checks
    )
