import secrets
import time
from contextlib import asynccontextmanager

import httpx
import pytest
from gateway.core.config import Settings
from gateway.main import create_app
from payplane_core.breaker import CircuitBreaker
from redis.asyncio import Redis

from tests.support.internal import internal
from tests.support.merchants import REDIS_URL, merchants_service

GATEWAY_BASE = "http://gateway.test"
ENCRYPTION_KEYS = ["test-gateway-cache-key"]


@pytest.fixture(scope="package")
async def svc():
    async with merchants_service() as service:
        yield service


@pytest.fixture(scope="package")
async def redis():
    client = Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


@asynccontextmanager
async def gateway_app(svc, clock=time.time, **overrides):
    app = make_gateway(svc, clock=clock, **overrides)
    async with app.router.lifespan_context(app):
        yield app


def make_gateway(svc, *, in_process_merchants: bool = True, clock=time.time, **overrides):
    """A gateway app, lifespan not started (``support.live.serve`` starts it)."""
    settings = Settings(
        **{
            **internal("gateway"),
            "REDIS_URL": REDIS_URL,
            "ENCRYPTION_KEYS": ENCRYPTION_KEYS,
            "MERCHANTS_URL": "http://merchants.test",
            **overrides,
        }
    )
    transport = svc.transport if in_process_merchants else None
    return create_app(settings, merchants_transport=transport, clock=clock)


@pytest.fixture(scope="package")
async def gateway(svc, app_clock):
    async with gateway_app(svc, clock=app_clock.unix) as app:
        yield app


@pytest.fixture
async def gw(gateway):
    transport = httpx.ASGITransport(app=gateway, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=GATEWAY_BASE) as client:
        yield client


@pytest.fixture
async def creds(svc):
    """A fresh merchant with limits high enough not to interfere."""
    created = await svc.create(
        rate_limit={"requests_per_second": 1000, "burst": 1000},
        quota={"payments_per_month": 100000},
    )
    return created["credentials"]


@pytest.fixture
async def breaker(redis):
    breaker = CircuitBreaker(
        redis, "cb:payments", failure_threshold=3, window_seconds=10, open_seconds=1
    )
    await breaker.reset()
    yield breaker
    await breaker.reset()


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"
