"""schemathesis over the provider simulator's own OpenAPI, with its provider API key: no
response >= 500 but the faults it exists to inject, none outside its documented schema."""

import asyncio

import httpx
from simulator.main import create_app

from tests.support.fuzz import fuzz
from tests.support.live import serve

from .conftest import API_KEY, sim_settings

# The simulated provider's own failures (by amount rule or by the control API): its purpose.
DESIGNED = frozenset({"injected-error", "injected-error-after-charge", "provider-timeout"})


class ApiKey(httpx.Auth):
    def auth_flow(self, request: httpx.Request):
        request.headers["Authorization"] = f"Bearer {API_KEY}"
        yield request


async def test_simulator_openapi_fuzz(receiver):
    settings = sim_settings(receiver, SIM_FAIL_DELAY_MS=0, SIM_TIMEOUT_HOLD_SECONDS=0.05)
    # The charge operations come before /v1/control in the schema, so a latency the fuzzer
    # sets through the control API never holds a charge it sends.
    async with serve(create_app(settings)) as base:
        sent, failures = await asyncio.to_thread(
            fuzz, base, ApiKey(), max_examples=25, designed_faults=DESIGNED
        )
    print(f"simulator: {sent} requests")
    assert sent > 100
    assert failures == []
