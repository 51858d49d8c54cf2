"""schemathesis over the payments service's own OpenAPI (public and internal routes), signed
as the gateway: no response >= 500, none outside its documented schema."""

import asyncio

from payments.core.config import Settings
from payments.main import create_app

from tests.support.fuzz import fuzz
from tests.support.internal import GatewayAuth, internal
from tests.support.live import serve


async def test_payments_openapi_fuzz(db_url, merchant_id):
    # Its own app: serve() runs (and ends) the lifespan, which would dispose the shared app's
    # engine under the tests that follow.
    settings = Settings(DATABASE_URL=db_url, RECONCILE_ENABLED=False, **internal("payments"))
    async with serve(create_app(settings)) as base:
        sent, failures = await asyncio.to_thread(
            fuzz, base, GatewayAuth(audience="payments", merchant_id=merchant_id), max_examples=25
        )
    print(f"payments: {sent} requests")
    assert sent > 100
    assert failures == []
