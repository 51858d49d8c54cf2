"""What payments reports into its breaker, through the real app (signature check, FailureReporter,
PostgreSQL) and real Redis, observed with MONITOR: an unmarked create costs no breaker call;
only the probe the gateway marked (signed) may close the circuit or free its lease; a forged
mark is refused with the request."""

import secrets

import pytest
from payments.core.config import Settings
from payments.main import create_app
from payplane_core.breaker import CircuitBreaker
from payplane_core.ids import new_id
from payplane_core.internal_auth import PROBE
from redis.asyncio import Redis

from tests.support.internal import internal
from tests.support.merchants import REDIS_URL
from tests.support.payments import client_for
from tests.support.pipeline import wait_until
from tests.support.redis_monitor import monitored

BODY = {"amount": 700, "currency": "EUR"}
LEASE_MS = 60_000  # the gateway's probe lease; long, so only a report can free it
OPEN_SECONDS = 30  # also how long half-open lasts unprobed: longer than any test here


@pytest.fixture(scope="module")
def breaker_name() -> str:
    return f"cb:test-report-{secrets.token_hex(4)}"


@pytest.fixture(scope="module")
async def reporting_app(db_url, breaker_name):
    app = create_app(
        Settings(
            DATABASE_URL=db_url,
            RECONCILE_ENABLED=False,
            REDIS_URL=REDIS_URL,
            PAYMENTS_BREAKER=breaker_name,
            BREAKER_FAILURE_THRESHOLD=1,
            BREAKER_OPEN_SECONDS=OPEN_SECONDS,
            BREAKER_MIN_OPEN_SECONDS=0.1,
            **internal("payments"),
        )
    )
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def breaker(breaker_name):
    async with Redis.from_url(REDIS_URL) as client:
        breaker = CircuitBreaker(
            client,
            breaker_name,
            failure_threshold=1,
            open_seconds=OPEN_SECONDS,
            min_open_seconds=0.1,
        )
        await breaker.reset()
        yield breaker
        await breaker.reset()


async def half_open_with_lease(breaker: CircuitBreaker) -> None:
    """Tripped, open period over, and the gateway's probe lease taken."""
    assert await breaker.record_failure()

    async def half_open() -> bool:
        return (await breaker.state()).half_open

    await wait_until(half_open, within=2, what="half-open")
    await breaker.redis.set(breaker.probe_key, "1", px=LEASE_MS)


async def test_an_unmarked_create_makes_no_breaker_call(reporting_app, breaker):
    merchant = new_id("mer")
    async with monitored(REDIS_URL) as seen:
        async with client_for(reporting_app, merchant_id=merchant) as client:
            assert (await client.post("/api/v1/payments", json=BODY)).status_code == 201
            assert await seen(breaker.name) == []
            bad = await client.post("/api/v1/payments", json={"amount": -1})
            assert bad.status_code == 422
            assert await seen(breaker.name) == []
        # the control: the same create marked as the probe is reported (one script call)
        async with client_for(reporting_app, merchant_id=merchant, probe=True) as client:
            assert (await client.post("/api/v1/payments", json=BODY)).status_code == 201
        calls = await seen(breaker.name)
        assert calls and calls[0].startswith("EVAL"), calls


async def test_the_marked_probes_success_closes_the_circuit(reporting_app, breaker):
    await half_open_with_lease(breaker)
    async with client_for(reporting_app, merchant_id=new_id("mer")) as client:
        assert (await client.post("/api/v1/payments", json=BODY)).status_code == 201
    assert (await breaker.state()).half_open  # an unmarked success proves nothing here
    async with client_for(reporting_app, merchant_id=new_id("mer"), probe=True) as client:
        assert (await client.post("/api/v1/payments", json=BODY)).status_code == 201
    state = await breaker.state()
    assert not state.open and not state.half_open
    assert await breaker.redis.exists(breaker.tripped_key, breaker.probe_key) == 0


async def test_a_marked_probe_refused_for_its_input_frees_the_lease(reporting_app, breaker):
    await half_open_with_lease(breaker)
    async with client_for(reporting_app, merchant_id=new_id("mer")) as client:
        assert (await client.post("/api/v1/payments", json={"amount": -1})).status_code == 422
    assert await breaker.redis.exists(breaker.probe_key)  # not the probe: lease kept
    async with client_for(reporting_app, merchant_id=new_id("mer"), probe=True) as client:
        assert (await client.post("/api/v1/payments", json={"amount": -1})).status_code == 422
    assert not await breaker.redis.exists(breaker.probe_key)
    assert (await breaker.state()).half_open


async def test_a_forged_or_unsigned_probe_mark_is_not_honoured(reporting_app, breaker):
    await half_open_with_lease(breaker)
    forged = {PROBE: "1"}

    async def forge(request) -> None:  # request hooks run after the auth flow signed
        request.headers.update(forged)

    async with client_for(reporting_app, merchant_id=new_id("mer")) as client:
        client.event_hooks = {"request": [forge]}
        response = await client.post("/api/v1/payments", json=BODY)
    assert response.status_code == 401, response.text
    async with client_for(reporting_app) as unsigned:
        response = await unsigned.post("/api/v1/payments", json=BODY, headers=forged)
    assert response.status_code == 401, response.text
    assert (await breaker.state()).half_open  # neither closed the circuit
    assert await breaker.redis.exists(breaker.probe_key)  # nor freed the lease
