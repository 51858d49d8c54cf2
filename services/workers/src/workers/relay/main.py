"""relay entry point: ``uvicorn --factory workers.relay.main:create_app`` (port 8111)."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from payplane_core.app import create_service_app
from payplane_core.db import create_engine, ping
from payplane_core.tasks import stop

from workers.relay.config import RelaySettings
from workers.relay.publisher import Relay
from workers.stats import refresh_forever


def create_app(settings: RelaySettings | None = None) -> FastAPI:
    settings = settings or RelaySettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.OUTBOX_DATABASE_URL, **settings.db_pool())
        relay = Relay(settings, engine)
        app.state.engine = engine
        app.state.relay = relay
        tasks = [
            asyncio.create_task(relay.run(), name="relay"),
            asyncio.create_task(
                refresh_forever(relay.refresh_stats, every=settings.STATS_INTERVAL_SECONDS)
            ),
        ]
        yield
        await stop(*tasks)
        await engine.dispose()

    async def database(app: FastAPI) -> None:
        await ping(app.state.engine)

    async def broker(app: FastAPI) -> None:
        await app.state.relay.broker.check()

    async def listener(app: FastAPI) -> None:
        # Without it the relay still works, on its fallback poll: degraded, so not ready.
        await app.state.relay.listener.check()

    return create_service_app(
        settings=settings,
        routers=[],
        lifespan=lifespan,
        readiness=[("database", database), ("broker", broker), ("listener", listener)],
    )
