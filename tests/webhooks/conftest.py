import httpx
import pytest
from payments.core.config import Settings as PaymentsSettings
from payments.main import create_app as payments_app
from providers.core.config import Settings as ProvidersSettings
from providers.main import create_app as providers_app
from webhooks.core.config import Settings
from webhooks.main import create_app

from tests.support.db import fresh_database
from tests.support.internal import GatewayAuth, internal
from tests.support.live import serve
from tests.support.providers_flow import ENCRYPTION_KEY, PROVIDER_SCOPE, whsec

PROVIDER = "sim-w"
PROVIDER_SECRET = whsec("webhooks-test-provider")


@pytest.fixture(scope="package")
async def payments_url():
    url = await fresh_database("payments", "payments_webhooks")
    app = payments_app(PaymentsSettings(DATABASE_URL=url, **internal("payments")))
    async with serve(app) as base:
        yield base


@pytest.fixture(scope="package")
async def providers_url():
    url = await fresh_database("providers", "providers_webhooks")
    app = providers_app(
        ProvidersSettings(
            DATABASE_URL=url,
            **internal("providers"),
            ENCRYPTION_KEYS=[ENCRYPTION_KEY],
            REDIS_URL="redis://127.0.0.1:6379/2",
            CONSUMER_ENABLED=False,
            HEALTH_PROBE_SECONDS=60,
        )
    )
    async with serve(app) as base:
        async with httpx.AsyncClient(
            base_url=base, auth=GatewayAuth(audience="providers", caller="cli")
        ) as c:
            response = await c.put(
                f"/internal/v1/providers/{PROVIDER}",
                json={
                    "endpoint": "http://127.0.0.1:9",
                    "api_key": "sk_test_webhooks",
                    "webhook_secret": PROVIDER_SECRET,
                },
            )
            assert response.status_code in (200, 201), response.text
        yield base


@pytest.fixture(scope="package")
async def logs_url():
    return await fresh_database("webhooks", "logs")


@pytest.fixture(scope="package")
async def app(logs_url, payments_url, providers_url):
    app = create_app(
        Settings(
            DATABASE_URL=logs_url,
            **internal("webhooks"),
            PAYMENTS_URL=payments_url,
            PROVIDERS_URL=providers_url,
        )
    )
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def ingress(app):
    """Requests as the gateway forwards them: internally signed, no merchant."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://webhooks.test",
        auth=GatewayAuth(audience="webhooks", scopes=[PROVIDER_SCOPE], key_id=""),
    ) as client:
        yield client


@pytest.fixture
async def operator(app):
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://webhooks.test",
        auth=GatewayAuth(audience="webhooks", caller="cli", scopes=[], key_id=""),
    ) as client:
        yield client


@pytest.fixture
async def payments(payments_url):
    """A merchant's view of payments, and the providers service's internal view."""
    async with (
        httpx.AsyncClient(
            base_url=payments_url,
            auth=GatewayAuth(audience="payments", merchant_id="mer_webhooks_test"),
        ) as merchant,
        httpx.AsyncClient(
            base_url=payments_url,
            auth=GatewayAuth(audience="payments", caller="providers", scopes=[]),
        ) as internal,
    ):
        yield merchant, internal
