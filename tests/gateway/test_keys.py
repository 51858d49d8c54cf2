"""Key lifecycle as the gateway sees it: cache, revocation, rotation with grace, expiry."""

import json
from dataclasses import replace
from datetime import timedelta

import httpx
from gateway.keys import KnownKeys
from payplane_core.apikeys import hash_key, key_cache_key
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support.pipeline import wait_until
from tests.support.signing import ask_gateway, signed_request

from .conftest import GATEWAY_BASE, gateway_app

BODY = {"amount": 100, "currency": "EUR"}


def write(creds, api_key=None, key_id=None, secret=None):
    return signed_request(
        "POST",
        "/api/v1/payments",
        api_key=api_key or creds["api_key"],
        key_id=key_id or creds["api_key_id"],
        secret=secret or creds["signing_secret"],
        body=BODY,
    )


def read(key):
    return signed_request("GET", "/api/v1/payments", api_key=key)


async def test_cache_holds_no_plaintext_secret(gw, creds, redis):
    assert (await ask_gateway(gw, write(creds))).status_code == 200
    cached = await redis.get(key_cache_key(hash_key(creds["api_key"])))
    assert (
        cached is not None and 0 < await redis.ttl(key_cache_key(hash_key(creds["api_key"]))) <= 30
    )
    for secret in (creds["api_key"], creds["signing_secret"], creds["webhook_secret"]):
        assert secret.encode() not in cached


async def test_revocation_takes_effect_at_once(gw, svc, creds):
    assert (await ask_gateway(gw, read(creds["read_key"]))).status_code == 200  # now cached
    async with svc.client("operator") as admin:
        path = f"/internal/v1/merchants/{creds['merchant_id']}/keys/{creds['read_key_id']}/revoke"
        assert (await admin.post(path)).status_code == 200
    response = await ask_gateway(gw, read(creds["read_key"]))
    assert response.status_code == 401 and response.json()["reason"] == "key-revoked"
    # the merchant's other key is untouched
    assert (await ask_gateway(gw, read(creds["api_key"]))).status_code == 200


async def test_revocation_bounded_by_cache_ttl_even_if_the_drop_is_lost(svc, creds, redis):
    """Revoked behind the cache's back (no invalidation): the TTL alone ends the key."""
    cached = key_cache_key(hash_key(creds["read_key"]))
    async with gateway_app(svc, KEY_CACHE_TTL_SECONDS=1) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=GATEWAY_BASE) as gw:
            assert (await ask_gateway(gw, read(creds["read_key"]))).status_code == 200
            engine = create_async_engine(svc.settings.DATABASE_URL)
            async with engine.begin() as conn:
                await conn.execute(
                    text("UPDATE api_keys SET revoked_at = now() WHERE id = :k"),
                    {"k": creds["read_key_id"]},
                )
            await engine.dispose()
            assert (await ask_gateway(gw, read(creds["read_key"]))).status_code == 200  # cached
            assert 0 < await redis.pttl(cached) <= 1000  # the entry carries the 1 s TTL

            async def expired() -> bool:
                return not await redis.exists(cached)

            await wait_until(expired, within=3, what="the cache entry expired by its TTL")
            response = await ask_gateway(gw, read(creds["read_key"]))
            assert response.status_code == 401 and response.json()["reason"] == "key-revoked"


async def test_rotation_keeps_the_old_key_for_its_grace_period(gw, svc, creds, clock):
    assert (await ask_gateway(gw, write(creds))).status_code == 200  # old key cached
    async with svc.client("operator") as admin:
        path = f"/internal/v1/merchants/{creds['merchant_id']}/keys/{creds['api_key_id']}/rotate"
        rotated = (await admin.post(path, json={"grace_seconds": 60})).json()
    new_key, new_id, new_secret = (
        rotated["secret_key"],
        rotated["key"]["id"],
        rotated["signing_secret"],
    )
    # both work during the grace period, each with its own signing secret
    assert (await ask_gateway(gw, write(creds))).status_code == 200
    assert (await ask_gateway(gw, write(creds, new_key, new_id, new_secret))).status_code == 200
    # the new key cannot sign with the old key's secret
    response = await ask_gateway(gw, write(creds, new_key, new_id, creds["signing_secret"]))
    assert response.status_code == 403
    clock.offset = timedelta(seconds=61)  # past the grace period; the old key is still cached
    response = await ask_gateway(gw, write(creds))
    assert response.status_code == 401 and response.json()["reason"] == "key-expired"
    assert (await ask_gateway(gw, write(creds, new_key, new_id, new_secret))).status_code == 200


async def test_expired_key_is_refused_even_from_cache(gw, svc, creds, clock):
    async with svc.client("operator") as admin:
        issued = (
            await admin.post(
                f"/internal/v1/merchants/{creds['merchant_id']}/keys",
                json={"kind": "read", "expires_in_seconds": 60},
            )
        ).json()
    assert issued["secret_key"].startswith("rk_") and issued["signing_secret"] is None
    assert (await ask_gateway(gw, read(issued["secret_key"]))).status_code == 200
    clock.offset = timedelta(seconds=61)  # cached, and now past its expiry
    response = await ask_gateway(gw, read(issued["secret_key"]))
    assert response.status_code == 401 and response.json()["reason"] == "key-expired"


async def test_deleted_merchant_keys_stop_working(gw, svc, creds):
    assert (await ask_gateway(gw, read(creds["api_key"]))).status_code == 200
    async with svc.client("operator") as admin:
        assert (
            await admin.delete(f"/internal/v1/merchants/{creds['merchant_id']}")
        ).status_code == 204
    assert (await ask_gateway(gw, read(creds["api_key"]))).status_code == 401


async def test_merchants_down_is_503_not_500(svc, creds, redis):
    # a real socket that refuses connections
    async with gateway_app(
        svc, in_process_merchants=False, MERCHANTS_URL="http://127.0.0.1:9"
    ) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=GATEWAY_BASE) as gw:
            await redis.delete(key_cache_key(hash_key(creds["read_key"])))
            response = await ask_gateway(gw, read(creds["read_key"]))
    assert response.status_code == 503 and response.headers["retry-after"] == "1"
    assert response.json()["reason"] == "dependency-unavailable"


async def test_a_key_cannot_be_pointed_at_another_merchant_through_redis(gw, svc, creds, redis):
    """Whoever can write Redis copies another merchant's sealed entry under their own key's
    hash, or writes a plain forged entry: either is a miss, re-read from merchants."""
    victim = (await svc.create())["credentials"]
    assert (await ask_gateway(gw, read(victim["read_key"]))).status_code == 200
    assert (await ask_gateway(gw, read(creds["read_key"]))).status_code == 200
    mine = key_cache_key(hash_key(creds["read_key"]))
    victims = await redis.get(key_cache_key(hash_key(victim["read_key"])))
    forged = json.dumps(
        {
            "key_id": victim["read_key_id"],
            "key_hash": hash_key(creds["read_key"]),
            "kind": "read",
            "scopes": ["payments:read", "payments:write"],
            "merchant_id": victim["merchant_id"],
            "merchant_status": "active",
            "expires_at": None,
            "revoked": False,
            "signing_secret": None,
            "rate_limit": {"requests_per_second": 1e9, "burst": 10**9},
            "quota": {"payments_per_month": 10**9},
        }
    )
    for tampered in (victims, forged.encode()):
        await redis.set(mine, tampered, ex=30)
        response = await ask_gateway(gw, read(creds["read_key"]))
        assert response.status_code == 200, response.text
        assert response.headers["x-payplane-merchant-id"] == creds["merchant_id"]
        assert response.headers["x-payplane-scopes"] == "payments:read"
        assert await redis.get(mine) not in (victims, forged.encode())  # resealed from merchants


def counting_gets(redis, monkeypatch) -> list[str]:
    """The gateway's own Redis client, spied on: the keys it GETs (the calls still happen)."""
    seen: list[str] = []
    real_get = redis.get

    async def get(name, *args, **kwargs):
        seen.append(name)
        return await real_get(name, *args, **kwargs)

    monkeypatch.setattr(redis, "get", get)
    return seen


async def test_a_known_key_is_decided_without_reading_its_entry(
    gw, gateway, creds, redis, monkeypatch
):
    """One Redis round trip per request for a key seen before; a changed entry is read again."""
    assert (await ask_gateway(gw, write(creds))).status_code == 200  # now known here
    gets = counting_gets(gateway.state.gate.redis, monkeypatch)
    for prepared in (write(creds), read(creds["api_key"]), write(creds)):
        assert (await ask_gateway(gw, prepared)).status_code == 200
    assert gets == []
    entry = key_cache_key(hash_key(creds["api_key"]))
    await redis.delete(entry)  # as a revocation or a rotation would, or the TTL
    response = await ask_gateway(gw, write(creds))
    assert response.status_code == 200 and gets == [entry]  # decided again on a fresh read
    assert (await ask_gateway(gw, write(creds))).status_code == 200 and gets == [entry]


async def test_a_changed_entry_consumes_nothing(gw, gateway, creds, redis):
    """The admission refuses a stale copy before anything: the same signed request (same
    nonce) then passes on the fresh read, where a spent nonce would be refused as a replay."""
    assert (await ask_gateway(gw, read(creds["api_key"]))).status_code == 200  # now known here
    entry = key_cache_key(hash_key(creds["api_key"]))
    known = gateway.state.gate.known_keys.get(hash_key(creds["api_key"]))
    assert known is not None and known.sealed == await redis.get(entry)
    await redis.set(entry, b"replaced", ex=30)  # not the copy's entry any more
    prepared = write(creds)
    assert (await ask_gateway(gw, prepared)).status_code == 200
    replay = await ask_gateway(gw, prepared)
    assert replay.status_code == 403 and replay.json()["reason"] == "signature-nonce-reused"


async def test_a_refusal_from_a_known_copy_is_decided_again(gw, gateway, creds):
    """A copy that would refuse (here: one claiming the key revoked) is never final: the
    current entry decides."""
    assert (await ask_gateway(gw, read(creds["read_key"]))).status_code == 200
    known_keys = gateway.state.gate.known_keys
    key_hash = hash_key(creds["read_key"])
    known = known_keys.get(key_hash)
    assert known is not None
    known_keys.put(key_hash, replace(known, record=replace(known.record, revoked=True)))
    assert (await ask_gateway(gw, read(creds["read_key"]))).status_code == 200
    assert known_keys.get(key_hash) == known  # the fresh read replaced the copy


def test_known_keys_keep_the_most_recently_used():
    known_keys = KnownKeys(2)
    entries = {name: object() for name in "abc"}
    known_keys.put("a", entries["a"])
    known_keys.put("b", entries["b"])
    assert known_keys.get("a") is entries["a"]  # used: "b" is now the oldest
    known_keys.put("c", entries["c"])
    assert known_keys.get("b") is None
    assert known_keys.get("a") is entries["a"] and known_keys.get("c") is entries["c"]


async def test_a_forged_request_on_a_known_key_spends_nothing(gw, creds):
    """Refused on the local copy, then again on a fresh read: the genuine request with the
    same nonce still passes afterwards, once."""
    assert (await ask_gateway(gw, write(creds))).status_code == 200  # now known here
    genuine = write(creds)
    for forged in (
        {"body": json.dumps({**BODY, "amount": 10**9}).encode()},  # changed amount
        {"body": b'{"amount": 100, "currency": "EUR\x00"}'},  # NUL-laden
        {"path": "/api/v1/payments?x=1"},  # another target
        {"method": "PUT"},
    ):
        response = await ask_gateway(gw, genuine, **forged)
        assert response.status_code == 403, (forged, response.text)
    assert (await ask_gateway(gw, genuine)).status_code == 200
    replay = await ask_gateway(gw, genuine)
    assert replay.status_code == 403 and replay.json()["reason"] == "signature-nonce-reused"
