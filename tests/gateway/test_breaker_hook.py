"""Where failures are observed: the payments service reports its own 5xx into cb:payments,
and the gateway then fails fast. Here payments really fails (its database does not exist)."""

import httpx
from payments.core.config import Settings as PaymentsSettings
from payments.main import create_app as create_payments
from tests.support.internal import GatewayAuth
from tests.support.merchants import REDIS_URL, SECRET
from tests.support.signing import ask_gateway, signed_request


async def test_payment_failures_open_the_breaker_the_gateway_reads(gw, creds, breaker):
    payments = create_payments(
        PaymentsSettings(
            DATABASE_URL="postgresql+asyncpg://payplane:payplane@127.0.0.1:5432/payplane_unit_nowhere",
            INTERNAL_SIGNING_SECRETS=[SECRET],
            REDIS_URL=REDIS_URL,
            BREAKER_FAILURE_THRESHOLD=3,
            BREAKER_OPEN_SECONDS=2,
        )
    )
    async with payments.router.lifespan_context(payments):
        transport = httpx.ASGITransport(app=payments, raise_app_exceptions=False)
        auth = GatewayAuth(SECRET, merchant_id=creds["merchant_id"])
        async with httpx.AsyncClient(
            transport=transport, base_url="http://payments.test", auth=auth
        ) as client:
            # reads and bad input are not failures of the write path
            assert (await client.post("/api/v1/payments", json={"amount": -1})).status_code == 422
            for _ in range(3):
                response = await client.post(
                    "/api/v1/payments", json={"amount": 100, "currency": "EUR"}
                )
                assert response.status_code == 500
                assert response.headers["content-type"] == "application/problem+json"
    state = await breaker.state()
    assert state.open and state.retry_after_seconds <= 2
    post = signed_request(
        "POST",
        "/api/v1/payments",
        api_key=creds["api_key"],
        key_id=creds["api_key_id"],
        secret=creds["signing_secret"],
        body={"amount": 100, "currency": "EUR"},
    )
    response = await ask_gateway(gw, post)
    assert response.status_code == 503 and response.json()["reason"] == "circuit-open"
    assert response.headers["retry-after"] in ("1", "2")
