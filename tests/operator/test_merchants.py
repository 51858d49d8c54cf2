"""Merchant resources through the real kopf runtime, the real services and the real Envoy."""

import time

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support.kube import wait_for
from tests.support.platform import Client, Merchant

NS = "shop"
MERCHANTS = "payplane.io/v1alpha1/merchants"
PLANS = "payplane.io/v1alpha1/plans"
SECRETS = "v1/secrets"
BODY = {"amount": 1000, "currency": "EUR"}


def plan(name: str, rps: float, burst: int, quota: int = 100_000) -> dict:
    return {
        "apiVersion": "payplane.io/v1alpha1",
        "kind": "Plan",
        "metadata": {"name": name},
        "spec": {
            "displayName": name.title(),
            "rateLimit": {"requestsPerSecond": rps, "burst": burst},
            "quota": {"paymentsPerMonth": quota},
        },
    }


def merchant(name: str, plan_name: str, **spec) -> dict:
    return {
        "apiVersion": "payplane.io/v1alpha1",
        "kind": "Merchant",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"plan": plan_name, "displayName": name} | spec,
    }


def unique(prefix: str) -> str:
    return f"{prefix}-{time.time_ns() % 10**10}"


def condition(resource: dict | None, type_: str) -> dict:
    for c in (resource or {}).get("status", {}).get("conditions", []):
        if c["type"] == type_:
            return c
    return {}


async def ready(kube, name: str) -> dict:
    async def check():
        found = await kube.get(MERCHANTS, name, NS)
        return found if condition(found, "Ready").get("status") == "True" else None

    return await wait_for(check)


async def credentials(kube, name: str, not_merchant_key: str | None = None) -> Merchant:
    """The Secret's content (waits for it, and for it to differ from ``not_merchant_key``)."""
    import base64

    async def check():
        secret = await kube.get(SECRETS, f"{name}-credentials", NS)
        if secret is None:
            return None
        data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
        return None if data["api_key"] == not_merchant_key else data

    data = await wait_for(check)
    return Merchant(name=name, **data)


def pay(stack, who: Merchant):
    return Client(stack.url("envoy"), who).post("/api/v1/payments", BODY)


async def test_apply_gives_a_secret_whose_keys_pay_through_envoy(stack, kube, operator):
    await kube.create(PLANS, plan(unique("std"), 50, 100))
    plan_name = (await kube.list(PLANS))[-1]["metadata"]["name"]
    name = unique("acme")
    await kube.create(MERCHANTS, merchant(name, plan_name), NS)
    found = await ready(kube, name)
    keys = await credentials(kube, name)
    assert found["status"]["merchantId"] == keys.merchant_id
    assert found["status"]["credentialsSecret"] == f"{name}-credentials"
    assert found["status"]["plan"] == plan_name
    assert condition(found, "CredentialsIssued")["reason"] == "Issued"
    secret = await kube.get(SECRETS, f"{name}-credentials", NS)
    assert set(secret["data"]) == {
        "merchant_id",
        "api_key",
        "api_key_id",
        "read_key",
        "signing_secret",
        "webhook_secret",
    }
    owner = secret["metadata"]["ownerReferences"][0]
    assert owner["kind"] == "Merchant" and owner["uid"] == found["metadata"]["uid"]
    response = pay(stack, keys)
    assert response.status_code == 201, response.text
    assert response.json()["merchant_id"] == keys.merchant_id


async def test_unknown_plan_is_ready_false_until_the_plan_exists(stack, kube, operator):
    name, plan_name = unique("early"), unique("later")
    await kube.create(MERCHANTS, merchant(name, plan_name), NS)

    async def not_ready():
        found = await kube.get(MERCHANTS, name, NS)
        return condition(found, "Ready").get("reason") == "UnknownPlan" and found

    found = await wait_for(not_ready)
    assert condition(found, "Ready")["status"] == "False"
    assert plan_name in condition(found, "Ready")["message"]
    await kube.create(PLANS, plan(plan_name, 10, 20))
    await ready(kube, name)
    assert pay(stack, await credentials(kube, name)).status_code == 201


async def test_plan_change_enforces_the_new_limit(stack, kube, operator):
    plan_name, name = unique("flex"), unique("limited")
    await kube.create(PLANS, plan(plan_name, 50, 100))
    await kube.create(MERCHANTS, merchant(name, plan_name), NS)
    await ready(kube, name)
    keys = await credentials(kube, name)
    assert [pay(stack, keys).status_code for _ in range(3)] == [201, 201, 201]

    await kube.patch(
        PLANS, plan_name, {"spec": {"rateLimit": {"requestsPerSecond": 0.1, "burst": 1}}}
    )
    engine = create_async_engine(stack.database_url("merchants"))

    async def limit_applied():
        async with engine.connect() as conn:
            burst = await conn.scalar(
                text("SELECT burst FROM merchants WHERE id = :id"), {"id": keys.merchant_id}
            )
        return burst == 1

    try:
        await wait_for(limit_applied)
    finally:
        await engine.dispose()
    codes = [pay(stack, keys).status_code for _ in range(3)]
    assert codes.count(429) >= 2, codes  # a burst of one: at most one goes through


async def test_rotation_new_keys_now_old_keys_for_the_grace_then_401(stack, kube, operator):
    plan_name, name = unique("rot"), unique("rotating")
    await kube.create(PLANS, plan(plan_name, 50, 100))
    await kube.create(
        MERCHANTS, merchant(name, plan_name, credentials={"rotationGraceSeconds": 3}), NS
    )
    await ready(kube, name)
    old = await credentials(kube, name)
    await kube.patch(
        MERCHANTS, name, {"metadata": {"annotations": {"payplane.io/rotate-credentials": "1"}}}, NS
    )
    new = await credentials(kube, name, not_merchant_key=old.api_key)
    rotated_at = time.monotonic()
    assert new.merchant_id == old.merchant_id
    assert new.webhook_secret != old.webhook_secret and new.signing_secret != old.signing_secret
    assert pay(stack, new).status_code == 201
    assert pay(stack, old).status_code == 201  # inside the grace

    async def old_refused():
        return pay(stack, old).status_code == 401

    await wait_for(old_refused, timeout=15, interval=0.5)
    assert time.monotonic() - rotated_at >= 2  # not before the grace (less the poll's slack)
    assert pay(stack, new).status_code == 201
    found = await kube.get(MERCHANTS, name, NS)
    assert found["status"]["rotation"] == "1"
    assert condition(found, "CredentialsIssued")["reason"] == "Rotated"


async def test_secret_deleted_by_hand_comes_back_with_new_keys(stack, kube, operator, api):
    plan_name, name = unique("lost"), unique("careless")
    await kube.create(PLANS, plan(plan_name, 50, 100))
    await kube.create(MERCHANTS, merchant(name, plan_name), NS)
    await ready(kube, name)
    old = await credentials(kube, name)
    await kube.delete(SECRETS, f"{name}-credentials", NS)
    new = await credentials(kube, name, not_merchant_key=old.api_key)
    assert new.merchant_id == old.merchant_id
    assert pay(stack, new).status_code == 201

    async def said_so():
        found = await kube.get(MERCHANTS, name, NS)
        return condition(found, "CredentialsIssued").get("reason") == "Reissued"

    await wait_for(said_so)
    events = await kube.list("v1/events", NS)
    assert any(e.get("reason") == "CredentialsReissued" for e in events)


async def test_delete_revokes_every_key_and_releases_the_finalizer(stack, kube, operator):
    plan_name, name = unique("bye"), unique("leaving")
    await kube.create(PLANS, plan(plan_name, 50, 100))
    await kube.create(MERCHANTS, merchant(name, plan_name), NS)
    found = await ready(kube, name)
    assert "payplane.io/finalizer" in found["metadata"]["finalizers"]
    keys = await credentials(kube, name)
    assert pay(stack, keys).status_code == 201
    await kube.delete(MERCHANTS, name, NS)

    async def gone():
        return await kube.get(MERCHANTS, name, NS) is None

    await wait_for(gone)
    assert pay(stack, keys).status_code == 401


@pytest.fixture
def anything():
    return None
