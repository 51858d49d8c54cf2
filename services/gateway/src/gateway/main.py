"""gateway entry point: ``uvicorn --factory gateway.main:create_app``."""

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from payplane_core.app import create_service_app
from payplane_core.crypto import SecretBox
from payplane_core.internal_auth import load_private_key
from redis.asyncio import Redis

from gateway.admission import Admitter
from gateway.api.routes import authz
from gateway.core.config import Settings
from gateway.decision import Gate
from gateway.keys import KnownKeys


def create_app(
    settings: Settings | None = None,
    *,
    merchants_transport: httpx.AsyncBaseTransport | None = None,
    clock: Callable[[], float] = time.time,
) -> FastAPI:
    """``merchants_transport`` lets tests run the merchants service in-process; ``clock``
    (Unix seconds) decides key expiry, so a test moves it instead of sleeping."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = Redis.from_url(
            settings.REDIS_URL,
            socket_timeout=settings.REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=settings.REDIS_TIMEOUT_SECONDS,
        )
        merchants = settings.internal_http(
            "merchants",
            settings.MERCHANTS_URL,
            timeout=settings.MERCHANTS_TIMEOUT_SECONDS,
            transport=merchants_transport,
        )
        app.state.gate = Gate(
            settings=settings,
            redis=redis,
            merchants=merchants,
            box=SecretBox(settings.ENCRYPTION_KEYS),
            signing_key=load_private_key(settings.INTERNAL_SIGNING_KEY),
            known_keys=KnownKeys(settings.KNOWN_KEYS_MAX),
            clock=clock,
            # A nonce must be remembered as long as its signature could still be accepted.
            admitter=Admitter(
                redis,
                breaker_name=settings.PAYMENTS_BREAKER,
                nonce_ttl_seconds=2 * settings.SIGNATURE_MAX_SKEW_SECONDS,
                probe_lease_seconds=settings.PAYMENTS_BREAKER_PROBE_LEASE_SECONDS,
            ),
        )
        yield
        await merchants.aclose()
        await redis.aclose()

    async def redis_ready(app: FastAPI) -> None:
        await app.state.gate.redis.ping()

    # No internally signed routers: the gateway is what creates the internal signature.
    app = create_service_app(
        settings=settings, routers=[], lifespan=lifespan, readiness=[("redis", redis_ready)]
    )
    app.include_router(authz.router)
    return app
