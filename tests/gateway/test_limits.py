"""Rate limit, quota and circuit breaker under real concurrency (a real uvicorn socket)."""

import asyncio

import httpx
import pytest
from payplane_core.breaker import CircuitBreaker
from payplane_core.usage import current_period, quota_counter_key

from tests.support.live import serve
from tests.support.pipeline import wait_until
from tests.support.signing import ask_gateway, signed_create, signed_request

from .conftest import make_gateway

CONCURRENT = 50


@pytest.fixture(scope="module")
async def live_gateway(svc):
    async with serve(make_gateway(svc)) as url:
        yield url


async def burst_of(url: str, prepared_requests) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=CONCURRENT)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        return await asyncio.gather(*(ask_gateway(client, p) for p in prepared_requests))


def post(creds):
    return signed_create(creds)


async def test_rate_limit_is_exact_under_concurrency(svc, live_gateway):
    # 0.01 tokens/s: no refill can happen during the test, so exactly `burst` get through
    creds = (await svc.create(rate_limit={"requests_per_second": 0.01, "burst": 10}))["credentials"]
    prepared = [
        signed_request("GET", "/api/v1/payments", api_key=creds["read_key"])
        for _ in range(CONCURRENT)
    ]
    responses = await burst_of(live_gateway, prepared)
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 10 and statuses.count(429) == CONCURRENT - 10
    limited = next(r for r in responses if r.status_code == 429)
    assert limited.json()["reason"] == "rate-limited"
    assert 90 <= int(limited.headers["retry-after"]) <= 100  # one token per 100 s


async def test_quota_is_exact_under_concurrency(svc, live_gateway, redis):
    created = await svc.create(
        rate_limit={"requests_per_second": 1000, "burst": 1000}, quota={"payments_per_month": 7}
    )
    creds = created["credentials"]
    responses = await burst_of(live_gateway, [post(creds) for _ in range(CONCURRENT)])
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 7 and statuses.count(429) == CONCURRENT - 7
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.json()["reason"] == "quota-exceeded"
    assert int(refused.headers["retry-after"]) >= 1
    counter = await redis.get(quota_counter_key(creds["merchant_id"], current_period()))
    assert int(counter) == 7
    # reads do not count against the payment quota
    read = signed_request("GET", "/api/v1/payments", api_key=creds["read_key"])
    assert (await burst_of(live_gateway, [read]))[0].status_code == 200
    async with svc.client("operator") as admin:
        usage = (await admin.get(f"/internal/v1/merchants/{creds['merchant_id']}/usage")).json()
    assert usage["payments"] == 7 and usage["remaining"] == 0


async def test_breaker_opens_fails_fast_then_probes_once_and_closes(svc, live_gateway, breaker):
    creds = (await svc.create(rate_limit={"requests_per_second": 1000, "burst": 1000}))[
        "credentials"
    ]
    # Open for 3 s: the 20 refusals below must fit in the open period on a loaded machine.
    breaker = CircuitBreaker(
        breaker.redis, breaker.name, failure_threshold=3, window_seconds=10, open_seconds=3
    )
    async with httpx.AsyncClient(base_url=live_gateway, timeout=10) as client:
        assert (await ask_gateway(client, post(creds))).status_code == 200  # key cached
        assert not await breaker.record_failure()
        assert not await breaker.record_failure()
        assert (await ask_gateway(client, post(creds))).status_code == 200  # below threshold
        assert await breaker.record_failure()  # the third opens it

        # Fails fast: the gateway answers from the breaker alone (how fast is `make bench`'s
        # business, not a timed assertion here).
        for _ in range(20):
            response = await ask_gateway(client, post(creds))
            assert response.status_code == 503
            assert response.json()["reason"] == "circuit-open"
            assert 1 <= int(response.headers["retry-after"]) <= 3
        # reads are not on the payments write path: they still pass
        read = signed_request("GET", "/api/v1/payments", api_key=creds["read_key"])
        assert (await ask_gateway(client, read)).status_code == 200

        async def half_open() -> bool:
            return (await breaker.state()).half_open

        await wait_until(half_open, within=6, what="the open period ended")
        # half-open: one probe at a time, under concurrency too; the rest wait for its lease
        answers = await burst_of(live_gateway, [post(creds) for _ in range(10)])
        assert sorted(r.status_code for r in answers) == [200] + [503] * 9
        refused = [r for r in answers if r.status_code == 503]
        assert all(r.json()["reason"] == "circuit-open" for r in refused)
        assert all(1 <= int(r.headers["retry-after"]) <= 5 for r in refused)  # the lease
        assert await breaker.record_success(clear_failures=False)  # payments: probe succeeded
        assert (await ask_gateway(client, post(creds))).status_code == 200
        assert (await ask_gateway(client, post(creds))).status_code == 200
