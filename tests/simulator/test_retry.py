"""The simulator retries callbacks like a real provider: backoff with jitter, Retry-After
honoured, never a tight loop; and its callbacks can be switched off (status sync only)."""

import asyncio
import random
from datetime import UTC, datetime

import pytest
from payplane_core.ids import new_id
from simulator.retry import backoff_delay, retry_after_seconds
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.live import serve


def test_backoff_doubles_with_jitter_and_is_capped():
    rng = random.Random(7)
    delays = [backoff_delay(n, base=0.5, cap=600, rng=rng) for n in range(1, 16)]
    for n, delay in enumerate(delays, start=1):
        step = min(600, 0.5 * 2 ** (n - 1))
        assert step / 2 <= delay <= step
    assert delays[-1] >= 300  # hours of retries reach the cap, not a tight loop
    assert len({round(d, 6) for d in delays}) == len(delays)  # jittered


def test_retry_after_is_a_floor_but_capped():
    rng = random.Random(1)
    assert backoff_delay(1, base=0.5, cap=600, retry_after=30, rng=rng) >= 30
    assert backoff_delay(1, base=0.5, cap=600, retry_after=10**9, rng=rng) <= 600 + 60


def test_retry_after_parsing():
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("7") == 7
    assert retry_after_seconds("Thu, 01 Jan 2026 12:00:30 GMT", now=now) == 30
    assert retry_after_seconds("Thu, 01 Jan 2026 11:00:00 GMT", now=now) == 0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


def charge(payment_id: str) -> dict:
    return {"payment_id": payment_id, "amount": 1000, "currency": "EUR"}


@pytest.fixture
async def busy_platform():
    """Answers 429 with Retry-After: 1 to the first callback, 200 afterwards; times arrivals."""
    arrivals: list[float] = []
    arrived = asyncio.Event()

    async def hook(request) -> JSONResponse:
        await request.body()
        arrivals.append(asyncio.get_running_loop().time())
        arrived.set()
        if len(arrivals) == 1:
            return JSONResponse({}, status_code=429, headers={"retry-after": "1"})
        return JSONResponse({})

    app = Starlette(routes=[Route("/{path:path}", hook, methods=["POST"])])
    async with serve(app) as url:
        yield url, arrivals, arrived


async def test_callback_waits_for_retry_after(sim, busy_platform):
    url, arrivals, arrived = busy_platform
    state = sim.app.state
    state.settings = state.settings.model_copy(update={"SIM_WEBHOOK_URL": url})
    payment_id = new_id("pay")
    await sim.post("/v1/charges", json=charge(payment_id))
    async with asyncio.timeout(10):
        while len(arrivals) < 2:
            arrived.clear()
            await arrived.wait()
    # Base 0.05 s alone would have come back at once; the platform asked for 1 s.
    assert arrivals[1] - arrivals[0] >= 1.0


async def test_switched_off_callbacks_leave_only_the_status_api(sim, receiver):
    control = await sim.put("/v1/control", json={"callbacks_enabled": False})
    assert control.json()["callbacks_enabled"] is False
    payment_id = new_id("pay")
    await sim.post("/v1/charges", json=charge(payment_id))
    async with asyncio.timeout(10):
        while (await sim.get(f"/v1/charges/{payment_id}")).json()["status"] != "succeeded":  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    # The outcome was decided (and its callback skipped) in the same step, before it showed.
    assert receiver.received == []
    log = await sim.get("/v1/webhook-deliveries", params={"payment_id": payment_id})
    assert log.json()["data"] == []
