"""webhooks service entry point: ``uvicorn --factory webhooks.main:create_app``."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from payplane_core.app import create_service_app
from payplane_core.db import create_engine, ping, session_factory
from payplane_core.internal_client import InternalSigner

from webhooks.api.routes import audit, webhooks
from webhooks.core.config import Settings
from webhooks.provider_secrets import ProviderSecrets


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    def internal_client(base_url: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=base_url,
            auth=InternalSigner(settings.INTERNAL_SIGNING_SECRETS[0], caller="webhooks"),
            timeout=settings.INTERNAL_CALL_TIMEOUT_SECONDS,
        )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.DATABASE_URL, pool_size=settings.DB_POOL_SIZE)
        app.state.engine = engine
        app.state.sessions = session_factory(engine)
        app.state.payments = internal_client(settings.PAYMENTS_URL)
        providers = internal_client(settings.PROVIDERS_URL)
        app.state.provider_secrets = ProviderSecrets(
            providers,
            ttl=settings.PROVIDER_SECRETS_TTL_SECONDS,
            min_refresh=settings.PROVIDER_SECRETS_MIN_REFRESH_SECONDS,
        )
        yield
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
