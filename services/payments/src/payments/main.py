"""payments service entry point: ``uvicorn --factory payments.main:create_app``."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from payplane_core.app import create_service_app
from payplane_core.breaker import report_failures_into_breaker
from payplane_core.db import create_engine, ping, session_factory

from payments.api.routes import internal, payments
from payments.core.config import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.DATABASE_URL, pool_size=settings.DB_POOL_SIZE)
        app.state.engine = engine
        app.state.sessions = session_factory(engine)
        yield
        await engine.dispose()

    async def database(app: FastAPI) -> None:
        await ping(app.state.engine)

    app = create_service_app(
        settings=settings,
        routers=[payments.router, internal.router],
        lifespan=lifespan,
        readiness=[("database", database)],
    )
    if settings.REDIS_URL:
        # Failures are observed here, where they happen (database down, bugs), not guessed at
        # the gateway, which only reads the breaker and answers 503 while it is open.
        report_failures_into_breaker(
            app,
            redis_url=settings.REDIS_URL,
            name=settings.PAYMENTS_BREAKER,
            path="/api/v1/payments",
            failure_threshold=settings.BREAKER_FAILURE_THRESHOLD,
            window_seconds=settings.BREAKER_WINDOW_SECONDS,
            open_seconds=settings.BREAKER_OPEN_SECONDS,
        )
    return app
