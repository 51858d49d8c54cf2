"""merchants service entry point: ``uvicorn --factory merchants.main:create_app``."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI
from payplane_core.app import create_service_app
from payplane_core.crypto import SecretBox
from payplane_core.db import create_engine, ping, session_factory
from redis.asyncio import Redis

from merchants.api.routes import keys, merchants, secrets
from merchants.core.config import Settings
from merchants.service import Merchants


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.DATABASE_URL, **settings.db_pool())
        app.state.engine = engine
        app.state.sessions = session_factory(engine)
        app.state.box = SecretBox(settings.ENCRYPTION_KEYS)
        app.state.redis = Redis.from_url(
            settings.REDIS_URL, socket_timeout=1.0, socket_connect_timeout=1.0
        )
        app.state.merchants = Merchants(
            sessions=app.state.sessions,
            box=app.state.box,
            redis=app.state.redis,
            default_grace=timedelta(seconds=settings.KEY_ROTATION_GRACE_SECONDS),
        )
        yield
        await app.state.redis.aclose()
        await engine.dispose()

    async def database(app: FastAPI) -> None:
        await ping(app.state.engine)

    return create_service_app(
        settings=settings,
        routers=[merchants.router, keys.router, keys.resolve_router, secrets.router],
        lifespan=lifespan,
        readiness=[("database", database)],
    )
