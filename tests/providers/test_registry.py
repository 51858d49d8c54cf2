"""The provider registry API: idempotent registration, secrets encrypted, callers checked."""

import httpx
import pytest
from payplane_core.crypto import SecretBox
from payplane_core.db import session_factory
from providers import registry
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support.internal import GatewayAuth
from tests.support.providers_flow import ENCRYPTION_KEY, whsec

NEW_SECRET = whsec("registry-test")
BODY = {
    "endpoint": "http://127.0.0.1:9/",
    "api_key": "sk_registry_test_key",
    "webhook_secret": NEW_SECRET,
    "currencies": ["GBP", "CHF"],
    "priority": 5,
}


@pytest.fixture
async def as_caller(platform):
    clients = []

    def make(caller: str) -> httpx.AsyncClient:
        client = httpx.AsyncClient(
            base_url=platform.providers_url,
            auth=GatewayAuth(audience="providers", caller=caller, scopes=[]),
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


async def test_register_is_idempotent_and_hides_secrets(as_caller, providers_db):
    cli = as_caller("cli")
    first = await cli.put("/internal/v1/providers/reg-one", json=BODY)
    assert first.status_code == 201, first.text
    again = await cli.put("/internal/v1/providers/reg-one", json=BODY | {"weight": 3})
    assert again.status_code == 200
    out = again.json()
    assert (out["weight"], out["currencies"], out["endpoint"]) == (
        3,
        ["CHF", "GBP"],
        "http://127.0.0.1:9",
    )
    assert out["circuit"] == {"open": False, "retry_after_seconds": 0.0}
    assert "api_key" not in out and "webhook_secret" not in out
    listed = (await cli.get("/internal/v1/providers")).json()["data"]
    assert "reg-one" in [p["name"] for p in listed]
    assert BODY["api_key"] not in str(listed)

    engine = create_async_engine(providers_db)
    async with engine.connect() as conn:
        dump = str((await conn.execute(text("SELECT * FROM providers"))).all())
    await engine.dispose()
    assert BODY["api_key"] not in dump and NEW_SECRET not in dump
    assert NEW_SECRET.removeprefix("whsec_") not in dump


async def test_only_the_webhooks_service_reads_webhook_secrets(as_caller):
    await as_caller("cli").put("/internal/v1/providers/reg-two", json=BODY)
    readable = await as_caller("webhooks").get("/internal/v1/providers/webhook-secrets")
    assert readable.status_code == 200
    assert {"name": "reg-two", "webhook_secret": NEW_SECRET} in readable.json()["data"]
    # callers outside this service's INTERNAL_ALLOWED_CALLERS are refused before any route
    assert (
        await as_caller("notifier").get("/internal/v1/providers/webhook-secrets")
    ).status_code == 401
    assert (await as_caller("gateway").get("/internal/v1/providers")).status_code == 401
    # an accepted caller still needs the route's own permission
    assert (
        await as_caller("operator").get("/internal/v1/providers/webhook-secrets")
    ).status_code == 403


async def test_disabled_provider_is_not_routed_or_verified(as_caller):
    cli = as_caller("cli")
    await cli.put("/internal/v1/providers/reg-three", json=BODY)
    assert (await cli.delete("/internal/v1/providers/reg-three")).json()["enabled"] is False
    secrets = (await as_caller("webhooks").get("/internal/v1/providers/webhook-secrets")).json()
    assert "reg-three" not in [s["name"] for s in secrets["data"]]
    assert (await cli.delete("/internal/v1/providers/nope")).status_code == 404


@pytest.mark.parametrize(
    ("name", "change"),
    [
        ("Bad_Name", {}),
        ("reg-bad", {"webhook_secret": "not-a-whsec-secret"}),
        ("reg-bad", {"webhook_secret": "whsec_c2hvcnQ="}),
        ("reg-bad", {"currencies": ["euro"]}),
        ("reg-bad", {"endpoint": "not a url"}),
        ("reg-bad", {"weight": 0}),
        ("reg-bad", {"timeout_ms": -1}),
        ("reg-bad", {"surprise": True}),
    ],
)
async def test_invalid_registrations_are_422_and_write_nothing(as_caller, name, change):
    cli = as_caller("cli")
    response = await cli.put(f"/internal/v1/providers/{name}", json=BODY | change)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert (await cli.get(f"/internal/v1/providers/{name}")).status_code == 404


async def test_direct_access_is_refused(platform):
    async with httpx.AsyncClient(base_url=platform.providers_url) as anonymous:
        assert (await anonymous.get("/internal/v1/providers")).status_code == 401


async def test_reencrypt_reseals_provider_secrets_with_the_first_key(as_caller, providers_db):
    cli = as_caller("cli")
    assert (await cli.put("/internal/v1/providers/reg-rotate", json=BODY)).status_code in (200, 201)
    # Through the API (what `payplane secrets reencrypt` calls): one key, nothing to re-seal.
    answer = await cli.post("/internal/v1/secrets/reencrypt")
    assert answer.status_code == 200 and answer.json() == {"reencrypted": 0}
    # A rotation: the new key first, the old one still there to open what it sealed.
    engine = create_async_engine(providers_db)
    sessions = session_factory(engine)
    new, old = "test-encryption-key-new", ENCRYPTION_KEY
    try:
        async with sessions.begin() as session:
            assert await registry.reencrypt_secrets(session, SecretBox([new, old])) >= 2
        async with sessions() as session:
            provider = await registry.get_provider(session, name="reg-rotate")
            sealed = registry.secrets_of(provider, box=SecretBox([new]))  # the old key dropped
        assert (sealed.api_key, sealed.webhook_secret) == (BODY["api_key"], NEW_SECRET)
    finally:  # back under the running service's only key, for the tests that follow
        async with sessions.begin() as session:
            await registry.reencrypt_secrets(session, SecretBox([old, new]))
        await engine.dispose()
