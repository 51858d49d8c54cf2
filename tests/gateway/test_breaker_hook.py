"""Where failures are observed: the payments service reports its own infrastructure failures
into cb:payments, and the gateway then fails fast. Here payments really fails (its database
does not exist); input one merchant controls never counts."""

import httpx
from payments.core.config import Settings as PaymentsSettings
from payments.main import create_app as create_payments
from payplane_core.breaker import CircuitBreaker
from payplane_core.internal_auth import IDENTITY_STATE, PROBE, InternalIdentity

from tests.support.internal import GatewayAuth, internal
from tests.support.merchants import REDIS_URL
from tests.support.pipeline import wait_until
from tests.support.signing import ask_gateway, signed_create, upstream_identity


async def test_payment_failures_open_the_breaker_the_gateway_reads(gw, creds, breaker):
    payments = create_payments(
        PaymentsSettings(
            DATABASE_URL="postgresql+asyncpg://payplane:payplane@127.0.0.1:5432/payplane_unit_nowhere",
            **internal("payments"),
            REDIS_URL=REDIS_URL,
            BREAKER_FAILURE_THRESHOLD=3,
            BREAKER_OPEN_SECONDS=2,
        )
    )
    async with payments.router.lifespan_context(payments):
        transport = httpx.ASGITransport(app=payments, raise_app_exceptions=False)
        auth = GatewayAuth(audience="payments", merchant_id=creds["merchant_id"])
        async with httpx.AsyncClient(
            transport=transport, base_url="http://payments.test", auth=auth
        ) as client:
            # reads and bad input are not failures of the write path
            assert (await client.post("/api/v1/payments", json={"amount": -1})).status_code == 422
            for _ in range(3):
                response = await client.post(
                    "/api/v1/payments", json={"amount": 100, "currency": "EUR"}
                )
                assert response.status_code == 503, response.text
                assert response.headers["content-type"] == "application/problem+json"
                assert response.headers["retry-after"]
    state = await breaker.state()
    assert state.open and state.retry_after_seconds <= 2
    response = await ask_gateway(gw, signed_create(creds))
    assert response.status_code == 503 and response.json()["reason"] == "circuit-open"
    assert response.headers["retry-after"] in ("1", "2")


async def test_client_caused_errors_and_bugs_never_open_the_breaker(creds, breaker):
    """NUL bytes, lone surrogates, duplicated fields (4xx) and even a bug's 500 leave the
    shared circuit closed: only infrastructure failures may stop every merchant."""
    from payplane_core.breaker import FailureReporter
    from starlette.applications import Starlette
    from starlette.routing import Route

    async def buggy(request):
        raise RuntimeError("a bug one merchant's input can reach")

    await breaker.reset()
    app = Starlette(routes=[Route("/api/v1/payments", buggy, methods=["POST"])])
    reporting = FailureReporter(
        app,
        breaker=CircuitBreaker(breaker.redis, breaker.name, failure_threshold=2),
        methods=frozenset({"POST"}),
        path="/api/v1/payments",
    )
    transport = httpx.ASGITransport(app=reporting, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://payments.test") as client:
        for _ in range(4):
            assert (await client.post("/api/v1/payments")).status_code == 500
    assert not (await breaker.state()).open
    assert await breaker.redis.get(breaker.failures_key) is None


async def test_payments_reports_the_probes_outcome(breaker):
    """Half-open, payments' answer to the probe decides: a 503 re-opens the circuit, a refused
    input frees the probe lease (no verdict on the database), a success closes it."""
    from payplane_core.breaker import FailureReporter
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    answer = {"status": 503}
    marked = InternalIdentity("gateway", "mer_1", "key_1", frozenset(), "req-1", probe=True)

    async def create(request):
        # What the services' signature check stores for a verified request the gateway marked
        # (tests/payments/test_breaker_report.py goes through the real check).
        setattr(request.state, IDENTITY_STATE, marked)
        return Response(status_code=answer["status"])

    app = Starlette(routes=[Route("/api/v1/payments", create, methods=["POST"])])
    probed = CircuitBreaker(
        breaker.redis, breaker.name, failure_threshold=1, open_seconds=0.4, min_open_seconds=0.1
    )
    reporting = FailureReporter(
        app, breaker=probed, methods=frozenset({"POST"}), path="/api/v1/payments"
    )

    async def half_open() -> bool:
        return (await probed.state()).half_open

    async def probe(status: int) -> None:
        await wait_until(half_open, within=2, what="half-open")
        await probed.redis.set(probed.probe_key, "1", px=5000)  # the gateway's lease
        answer["status"] = status
        assert (await client.post("/api/v1/payments")).status_code == status

    transport = httpx.ASGITransport(app=reporting, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://payments.test") as client:
        assert (await client.post("/api/v1/payments")).status_code == 503
        assert (await probed.state()).open
        await probe(503)
        assert (await probed.state()).open  # re-opened
        await probe(422)
        assert (await probed.state()).half_open
        assert not await probed.redis.exists(probed.probe_key)  # the next request may probe
        await probe(201)
        state = await probed.state()
        assert not state.open and not state.half_open


async def test_the_gateway_marks_the_probe_it_admits_under_its_signature(gw, creds, breaker):
    """Half-open, the one create the gateway lets through carries the signed probe mark; the
    ones refused meanwhile, and every create once closed, carry none."""
    probed = CircuitBreaker(
        breaker.redis, breaker.name, failure_threshold=1, open_seconds=30, min_open_seconds=0.1
    )
    assert await probed.record_failure()

    async def half_open() -> bool:
        return (await probed.state()).half_open

    await wait_until(half_open, within=2, what="half-open")
    post = signed_create(creds)
    probe = await ask_gateway(gw, post)
    assert probe.status_code == 200 and probe.headers[PROBE] == "1"
    identity = upstream_identity(probe, post)
    assert identity.probe and identity.merchant_id == creds["merchant_id"]
    refused = await ask_gateway(gw, signed_create(creds))
    assert refused.status_code == 503 and PROBE not in refused.headers
    assert await probed.record_success(clear_failures=False)  # payments: the probe succeeded
    post = signed_create(creds)
    closed = await ask_gateway(gw, post)
    assert closed.status_code == 200 and PROBE not in closed.headers
    assert not upstream_identity(closed, post).probe
