"""schemathesis over the webhooks service's own OpenAPI, signed internally as the operator's
CLI (the audit log) and as the gateway (the provider route)."""

import asyncio

from webhooks.core.config import Settings
from webhooks.main import create_app

from tests.support.fuzz import fuzz
from tests.support.internal import GatewayAuth, internal
from tests.support.live import serve
from tests.support.providers_flow import PROVIDER_SCOPE


async def test_webhooks_openapi_fuzz(logs_url, payments_url, providers_url):
    # Its own app: serve() runs (and ends) the lifespan, which would close the shared app's
    # clients under the tests that follow.
    app = create_app(
        Settings(
            DATABASE_URL=logs_url,
            **internal("webhooks"),
            PAYMENTS_URL=payments_url,
            PROVIDERS_URL=providers_url,
        )
    )
    async with serve(app) as base:
        for auth in (
            GatewayAuth(audience="webhooks", caller="cli", scopes=[], key_id=""),
            GatewayAuth(audience="webhooks", scopes=[PROVIDER_SCOPE], key_id=""),
        ):
            sent, failures = await asyncio.to_thread(fuzz, base, auth, max_examples=25)
            print(f"webhooks as {auth.caller}: {sent} requests")
            assert sent > 20
            assert failures == []
