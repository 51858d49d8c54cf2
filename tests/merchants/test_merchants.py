"""Merchants, credentials, keys: the internal API against real PostgreSQL and Redis."""

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import httpx
from merchants import service
from payplane_core.apikeys import hash_key, key_cache_key
from payplane_core.crypto import SecretBox
from payplane_core.ids import has_prefix
from sqlalchemy import text
from standardwebhooks import Webhook

from tests.support.merchants import BASE_URL


def secrets_of(credentials: dict) -> list[str]:
    return [credentials[k] for k in ("api_key", "read_key", "signing_secret", "webhook_secret")]


async def table_dump(db) -> str:
    """Every row of every table as text: what an attacker with the database would see."""
    async with db.connect() as conn:
        parts = []
        for table in ("merchants", "api_keys", "merchant_events"):
            rows = await conn.execute(text(f"SELECT t::text FROM {table} t"))  # noqa: S608
            parts.extend(r[0] for r in rows)
    return "\n".join(parts)


async def test_create_returns_merchant_and_credentials_once(svc, client):
    created = await svc.create(
        "acme-shop",
        display_name="Acme Shop",
        plan="growth",
        webhook_url="http://127.0.0.1:9999/hooks",
        rate_limit={"requests_per_second": 5, "burst": 10},
        quota={"payments_per_month": 1000},
        allowed_providers=["sim-a", "sim-b"],
    )
    merchant, creds = created["merchant"], created["credentials"]
    assert has_prefix(merchant["id"], "mer") and creds["merchant_id"] == merchant["id"]
    assert merchant["rate_limit"] == {"requests_per_second": 5.0, "burst": 10}
    assert merchant["quota"] == {"payments_per_month": 1000}
    assert merchant["allowed_providers"] == ["sim-a", "sim-b"]
    assert merchant["status"] == "active" and merchant["plan"] == "growth"
    assert creds["api_key"].startswith("pk_") and creds["read_key"].startswith("rk_")
    assert has_prefix(creds["api_key_id"], "key") and has_prefix(creds["read_key_id"], "key")
    assert creds["webhook_secret"].startswith("whsec_")
    assert len(creds["api_key"]) > 40 and len(creds["signing_secret"]) > 40

    for path in (
        f"/internal/v1/merchants/{merchant['id']}",
        "/internal/v1/merchants/by-name/acme-shop",
    ):
        shown = (await client.get(path)).json()
        assert shown["id"] == merchant["id"]
        assert not any(s in str(shown) for s in secrets_of(creds))

    keys = (await client.get(f"/internal/v1/merchants/{merchant['id']}/keys")).json()
    assert {k["kind"] for k in keys} == {"api", "read"}
    assert {k["prefix"] for k in keys} == {creds["api_key"][:11], creds["read_key"][:11]}
    assert not any(s in str(keys) for s in secrets_of(creds))


async def test_no_plaintext_key_or_secret_in_any_table(svc, db):
    creds = (await svc.create())["credentials"]
    dump = await table_dump(db)
    for secret in secrets_of(creds):
        assert secret not in dump
        # nor a recognisable chunk of it
        assert secret[-20:] not in dump
    assert hash_key(creds["api_key"]) in dump and hash_key(creds["read_key"]) in dump


async def test_secrets_never_logged_nor_echoed_in_errors(svc, client, caplog):
    caplog.set_level(logging.DEBUG)
    created = await svc.create("logged-shop")
    creds = created["credentials"]
    merchant_id = creds["merchant_id"]
    await client.post(f"/internal/v1/merchants/{merchant_id}/credentials/rotate", json={})
    await client.get(f"/internal/v1/merchants/{merchant_id}/webhook")
    # a bad request that carries a secret must not reflect it
    bad = await client.post(
        "/internal/v1/merchants", json={"name": "Bad Name", "plan": creds["signing_secret"] * 2}
    )
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"
    assert creds["signing_secret"] not in bad.text
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    for secret in secrets_of(creds):
        assert secret not in logged


async def test_existing_name_is_409_and_writes_nothing(svc, client, db):
    await svc.create("twice")
    response = await client.post("/internal/v1/merchants", json={"name": "twice"})
    assert response.status_code == 409
    assert response.json()["type"].endswith("/merchant-exists")
    async with db.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM merchants WHERE name = 'twice'")) == 1


async def test_bad_input_is_a_problem_never_a_500(client):
    for body in (
        {"name": "UPPER"},
        {"name": "-leading"},
        {"name": "x" * 64},
        {"name": "ok", "rate_limit": {"requests_per_second": 0, "burst": 1}},
        {"name": "ok", "quota": {"payments_per_month": -1}},
        {"name": "ok", "webhook_url": "not a url"},
        {"name": "ok", "unknown": 1},
    ):
        response = await client.post("/internal/v1/merchants", json=body)
        assert response.status_code == 422, body
        assert response.json()["status"] == 422
    malformed = await client.post(
        "/internal/v1/merchants", content=b"{", headers={"content-type": "application/json"}
    )
    assert malformed.status_code == 400
    missing = await client.get("/internal/v1/merchants/mer_nope")
    assert missing.status_code == 404 and missing.json()["type"].endswith("/merchant-not-found")


async def test_unsigned_and_merchant_requests_are_refused(svc):
    async with httpx.AsyncClient(transport=svc.transport, base_url=BASE_URL) as raw:
        response = await raw.post("/internal/v1/merchants", json={"name": "sneaky"})
    assert response.status_code == 401
    async with svc.client("gateway") as gateway:
        response = await gateway.post("/internal/v1/merchants", json={"name": "sneaky"})
    assert response.status_code == 403


async def test_webhook_endpoint_gives_the_secret_to_the_notifier_only(svc):
    creds = (await svc.create(webhook_url="http://127.0.0.1:9/hook"))["credentials"]
    path = f"/internal/v1/merchants/{creds['merchant_id']}/webhook"
    async with svc.client("notifier") as notifier:
        target = (await notifier.get(path)).json()
        assert (await notifier.get("/internal/v1/merchants/mer_nope/webhook")).status_code == 404
    assert target == {
        "merchant_id": creds["merchant_id"],
        "webhook_url": "http://127.0.0.1:9/hook",
        "webhook_secret": creds["webhook_secret"],
        "previous_webhook_secret": None,  # no rotation yet
    }
    # the official Standard Webhooks library accepts the secret as issued
    hook = Webhook(target["webhook_secret"])
    at = datetime.now(UTC)
    signature = hook.sign("msg_1", at, '{"a":1}')
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
    }
    assert hook.verify('{"a":1}', headers) == {"a": 1}
    async with svc.client("gateway") as gateway:
        assert (await gateway.get(path)).status_code == 403


async def test_rotation_keeps_old_key_for_grace_and_only_once(svc, client, redis):
    creds = (await svc.create())["credentials"]
    merchant_id, old_id = creds["merchant_id"], creds["api_key_id"]
    await redis.set(key_cache_key(hash_key(creds["api_key"])), "cached", ex=60)
    response = await client.post(
        f"/internal/v1/merchants/{merchant_id}/keys/{old_id}/rotate", json={"grace_seconds": 600}
    )
    assert response.status_code == 200
    rotated = response.json()
    assert rotated["secret_key"].startswith("pk_") and rotated["signing_secret"]
    assert rotated["old_key"]["replaced_by"] == rotated["key"]["id"]
    assert rotated["old_key"]["active"] is True
    ends = datetime.fromisoformat(rotated["old_key"]["expires_at"])
    assert timedelta(seconds=590) < ends - datetime.now(UTC) <= timedelta(seconds=600)
    # the gateway's cached copy (with no expiry) is dropped so it learns the new expiry
    assert await redis.exists(key_cache_key(hash_key(creds["api_key"]))) == 0
    again = await client.post(f"/internal/v1/merchants/{merchant_id}/keys/{old_id}/rotate", json={})
    assert again.status_code == 409


async def test_revoke_is_recorded_idempotent_and_uncaches(svc, client, redis, db):
    creds = (await svc.create())["credentials"]
    merchant_id, key_id = creds["merchant_id"], creds["read_key_id"]
    cache = key_cache_key(hash_key(creds["read_key"]))
    await redis.set(cache, "cached", ex=60)
    path = f"/internal/v1/merchants/{merchant_id}/keys/{key_id}/revoke"
    first = (await client.post(path)).json()
    second = (await client.post(path)).json()
    assert first["revoked_at"] and first["revoked_at"] == second["revoked_at"]
    assert first["active"] is False
    assert await redis.exists(cache) == 0
    async with db.connect() as conn:
        types = list(
            await conn.scalars(
                text("SELECT type FROM merchant_events WHERE merchant_id = :m ORDER BY id"),
                {"m": merchant_id},
            )
        )
    assert types == ["merchant.created", "key.created", "key.created", "key.revoked"]
    assert (
        await client.post(f"/internal/v1/merchants/{merchant_id}/keys/key_nope/revoke")
    ).status_code == 404


async def test_resolve_is_for_the_gateway_and_takes_a_hash(svc, client):
    creds = (await svc.create())["credentials"]
    body = {"key_hash": hash_key(creds["api_key"])}
    assert (await client.post("/internal/v1/keys/resolve", json=body)).status_code == 403
    async with svc.client("gateway") as gateway:
        resolved = (await gateway.post("/internal/v1/keys/resolve", json=body)).json()
        unknown = await gateway.post("/internal/v1/keys/resolve", json={"key_hash": "0" * 64})
        not_a_hash = await gateway.post(
            "/internal/v1/keys/resolve", json={"key_hash": creds["api_key"]}
        )
    assert resolved["key_id"] == creds["api_key_id"]
    assert resolved["signing_secret"] == creds["signing_secret"]
    assert resolved["scopes"] == ["payments:read", "payments:write"]
    assert resolved["revoked"] is False and resolved["expires_at"] is None
    assert unknown.status_code == 404
    assert not_a_hash.status_code == 422 and creds["api_key"] not in not_a_hash.text


async def test_rotate_credentials_returns_the_secret_shape(svc, client):
    creds = (await svc.create())["credentials"]
    response = await client.post(
        f"/internal/v1/merchants/{creds['merchant_id']}/credentials/rotate",
        json={"grace_seconds": 0},
    )
    new = response.json()
    assert set(new) == set(creds)
    assert new["api_key"] != creds["api_key"] and new["read_key"] != creds["read_key"]
    assert new["signing_secret"] != creds["signing_secret"]
    assert new["webhook_secret"] != creds["webhook_secret"]  # rotated with the keys
    keys = (await client.get(f"/internal/v1/merchants/{creds['merchant_id']}/keys")).json()
    active = {k["id"] for k in keys if k["active"]}
    assert active == {new["api_key_id"], new["read_key_id"]}  # grace 0: old ones ended
    target = (await client.get(f"/internal/v1/merchants/{creds['merchant_id']}/webhook")).json()
    assert target["webhook_secret"] == new["webhook_secret"]  # the notifier signs with it
    assert target["previous_webhook_secret"] is None  # grace 0: the old secret ended too


async def test_rotation_grace_keeps_the_old_webhook_secret_signing(svc, client):
    creds = (await svc.create())["credentials"]
    path = f"/internal/v1/merchants/{creds['merchant_id']}"
    new = (await client.post(f"{path}/credentials/rotate", json={"grace_seconds": 600})).json()
    target = (await client.get(f"{path}/webhook")).json()
    assert target["webhook_secret"] == new["webhook_secret"]
    assert target["previous_webhook_secret"] == creds["webhook_secret"]


async def test_create_with_an_external_ref_makes_exactly_one_merchant(svc, client, db):
    """The operator retries with the resource's uid: concurrent or repeated creates, one row."""
    ref = f"uid-{datetime.now(UTC).timestamp()}"
    body = {"name": f"ref-{int(datetime.now(UTC).timestamp() * 1e6)}", "external_ref": ref}
    answers = await asyncio.gather(
        *(client.post("/internal/v1/merchants", json=body) for _ in range(5))
    )
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 200, 201]
    first = next(a.json() for a in answers if a.status_code == 201)
    assert first["credentials"]["api_key"].startswith("pk_")
    for again in answers:
        assert again.json()["merchant"]["id"] == first["merchant"]["id"]
        assert again.json()["merchant"]["external_ref"] == ref
        if again.status_code == 200:
            assert again.json()["credentials"] is None  # secrets are shown once
    async with db.connect() as conn:
        count = await conn.scalar(
            text("SELECT count(*) FROM merchants WHERE external_ref = :r"), {"r": ref}
        )
    assert count == 1
    other = await client.post(
        "/internal/v1/merchants", json=body | {"external_ref": ref + "-other"}
    )
    assert other.status_code == 409  # the name is live under another reference


async def test_a_deleted_merchant_frees_its_name(svc, client):
    name = f"reused-{int(datetime.now(UTC).timestamp() * 1e6)}"
    first = (await svc.create(name))["merchant"]
    assert (await client.delete(f"/internal/v1/merchants/{first['id']}")).status_code == 204
    second = await client.post("/internal/v1/merchants", json={"name": name})
    assert second.status_code == 201 and second.json()["merchant"]["id"] != first["id"]


async def test_update_and_delete(svc, client):
    creds = (await svc.create())["credentials"]
    path = f"/internal/v1/merchants/{creds['merchant_id']}"
    updated = (
        await client.patch(path, json={"plan": "pro", "quota": {"payments_per_month": 5}})
    ).json()
    assert updated["plan"] == "pro" and updated["quota"] == {"payments_per_month": 5}
    assert (await client.delete(path)).status_code == 204
    assert (await client.get(path)).status_code == 404
    async with svc.client("gateway") as gateway:
        resolved = (
            await gateway.post(
                "/internal/v1/keys/resolve", json={"key_hash": hash_key(creds["api_key"])}
            )
        ).json()
    assert resolved["revoked"] is True and resolved["merchant_status"] == "deleted"


async def test_usage_reads_the_gateway_counter(svc, client, redis):
    from payplane_core.usage import current_period, quota_counter_key

    creds = (await svc.create(quota={"payments_per_month": 10}))["credentials"]
    await redis.set(quota_counter_key(creds["merchant_id"], current_period()), 3, ex=60)
    usage = (await client.get(f"/internal/v1/merchants/{creds['merchant_id']}/usage")).json()
    assert usage["payments"] == 3 and usage["remaining"] == 7


async def test_reencrypt_endpoint_is_for_platform_callers(svc):
    async with svc.client("cli") as cli:
        answer = await cli.post("/internal/v1/secrets/reencrypt")
    assert answer.status_code == 200 and answer.json() == {"reencrypted": 0}  # one key: all current
    async with svc.client("gateway") as gateway:
        assert (await gateway.post("/internal/v1/secrets/reencrypt")).status_code == 403


async def test_encryption_key_rotation_reencrypts_everything(svc, db_url):
    from payplane_core.db import create_engine, session_factory

    creds = (await svc.create())["credentials"]
    old_box = SecretBox(["test-encryption-key-1"])
    rotating = SecretBox(["test-encryption-key-2", "test-encryption-key-1"])
    engine = create_engine(db_url, pool_size=1)
    sessions = session_factory(engine)
    try:
        async with sessions.begin() as session:
            assert await service.reencrypt_secrets(session, rotating) >= 2
        new_only = SecretBox(["test-encryption-key-2"])
        async with sessions() as session:
            _, webhook = await service.webhook_target(
                session, new_only, merchant_id=creds["merchant_id"]
            )
            found = await service.resolve_key(
                session, new_only, key_hash=hash_key(creds["api_key"])
            )
        assert (
            webhook == [creds["webhook_secret"]] and found and found[2] == creds["signing_secret"]
        )
        # and back, so the shared service (old key only) keeps working for the other tests
        back = SecretBox(["test-encryption-key-1", "test-encryption-key-2"])
        async with sessions.begin() as session:
            await service.reencrypt_secrets(session, back)
        async with sessions() as session:
            await service.webhook_target(session, old_box, merchant_id=creds["merchant_id"])
    finally:
        await engine.dispose()
