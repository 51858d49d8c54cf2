"""webhooks service entry point: ``uvicorn --factory webhooks.main:create_app``."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx
from fastapi import FastAPI
from payplane_core.app import create_service_app
from payplane_core.db import create_engine, ping, session_factory
from payplane_core.retention import Retention, every, purge

from webhooks.api.routes import audit, webhooks
from webhooks.core.config import Settings
from webhooks.provider_secrets import ProviderSecrets


def log_retention(settings: Settings) -> Retention:
    return Retention(
        "webhook_logs",
        "received_at",
        keep=timedelta(days=settings.WEBHOOK_LOG_RETENTION_DAYS),
        condition="handoff <> 'pending'",
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    def internal_client(base_url: str, audience: str) -> httpx.AsyncClient:
        timeout = settings.INTERNAL_CALL_TIMEOUT_SECONDS
        return settings.internal_http(audience, base_url, timeout=timeout)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.DATABASE_URL, **settings.db_pool())
        app.state.engine = engine
        app.state.sessions = session_factory(engine)
        app.state.payments = internal_client(settings.PAYMENTS_URL, "payments")
        providers = internal_client(settings.PROVIDERS_URL, "providers")
        app.state.provider_secrets = ProviderSecrets(
            providers,
            ttl=settings.PROVIDER_SECRETS_TTL_SECONDS,
            min_refresh=settings.PROVIDER_SECRETS_MIN_REFRESH_SECONDS,
        )
        purger = None
        if settings.RETENTION_INTERVAL_SECONDS > 0:
            rule = log_retention(settings)
            purger = asyncio.create_task(
                every(settings.RETENTION_INTERVAL_SECONDS, lambda: purge(engine, rule))
            )
        yield
        if purger is not None:
            purger.cancel()
        await app.state.payments.aclose()
        await providers.aclose()
        await engine.dispose()

    async def database(app: FastAPI) -> None:
        await ping(app.state.engine)

    return create_service_app(
        settings=settings,
        routers=[webhooks.router, audit.router],
        lifespan=lifespan,
        readiness=[("database", database)],
    )
