"""schemathesis over the merchants service's own OpenAPI, signed internally as the operator's
CLI (the admin routes) and as the gateway (key resolution): no response >= 500, none outside
its documented schema."""

import asyncio

from merchants.core.config import Settings
from merchants.main import create_app

from tests.support.db import fresh_database
from tests.support.fuzz import fuzz
from tests.support.internal import LOOPBACK_ALLOWLIST, GatewayAuth, internal
from tests.support.live import serve
from tests.support.merchants import REDIS_URL


async def test_merchants_openapi_fuzz():
    # A database of its own: the merchants it creates never meet the other tests' listings.
    settings = Settings(
        DATABASE_URL=await fresh_database("merchants", "merchants_fuzz"),
        **internal("merchants"),
        ENCRYPTION_KEYS=["fuzz-encryption-key-1"],
        REDIS_URL=REDIS_URL,
        WEBHOOK_URL_ALLOWLIST=LOOPBACK_ALLOWLIST,
    )
    async with serve(create_app(settings)) as base:
        for caller in ("cli", "gateway"):
            auth = GatewayAuth(audience="merchants", caller=caller, scopes=[], key_id="")
            sent, failures = await asyncio.to_thread(fuzz, base, auth, max_examples=10)
            print(f"merchants as {caller}: {sent} requests")
            assert sent > 100
            assert failures == []
