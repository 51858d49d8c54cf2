"""schemathesis over the providers service's own OpenAPI, signed internally as the operator's
CLI (the registry), the webhooks service (the secrets) and payments (reconciliation): no
response >= 500, none outside its documented schema."""

import asyncio

from providers.core.config import Settings
from providers.main import create_app

from tests.support.db import fresh_database
from tests.support.fuzz import fuzz
from tests.support.internal import GatewayAuth, internal
from tests.support.live import serve
from tests.support.providers_flow import ENCRYPTION_KEY

from .conftest import REDIS_URL


async def test_providers_openapi_fuzz(payments_url):
    # Its own database and breakers: the providers it registers never route the flow tests.
    settings = Settings(
        DATABASE_URL=await fresh_database("providers", "providers_fuzz"),
        **internal("providers"),
        ENCRYPTION_KEYS=[ENCRYPTION_KEY],
        REDIS_URL=REDIS_URL,
        PAYMENTS_URL=payments_url,
        BREAKER_PREFIX="fuzz:cb:provider:",
        CONSUMER_ENABLED=False,
        HEALTH_PROBE_SECONDS=3600,
    )
    async with serve(create_app(settings)) as base:
        for caller in ("cli", "webhooks", "payments"):
            auth = GatewayAuth(audience="providers", caller=caller, scopes=[], key_id="")
            sent, failures = await asyncio.to_thread(fuzz, base, auth, max_examples=10)
            print(f"providers as {caller}: {sent} requests")
            assert sent > 50
            assert failures == []
