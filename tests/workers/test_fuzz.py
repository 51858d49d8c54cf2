"""schemathesis over the notifier's own OpenAPI (its deliveries API), signed internally as the
operator's CLI: no response >= 500, none outside its documented schema."""

import asyncio

from workers.notifier.config import NotifierSettings
from workers.notifier.main import create_app

from tests.support.fuzz import fuzz
from tests.support.internal import GatewayAuth
from tests.support.live import serve
from tests.support.pipeline import topology_env, worker_env


async def test_notifier_openapi_fuzz(notifier_url, merchants_url, outbox_url):
    env = worker_env(outbox_url, notifier_url, merchants_url, topology_env())
    app = create_app(NotifierSettings(**env), run_pipeline=False)
    async with serve(app) as base:
        auth = GatewayAuth(audience="notifier", caller="cli", scopes=[], key_id="")
        sent, failures = await asyncio.to_thread(fuzz, base, auth, max_examples=25)
    print(f"notifier: {sent} requests")
    assert sent > 50
    assert failures == []
