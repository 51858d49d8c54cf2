"""Bearer key resolution: Redis cache first, the merchants service on a miss.

The cache entry is keyed by the key's SHA-256 hash (the key itself is never stored or sent
anywhere) and holds the signing secret encrypted with AES-GCM, so Redis never sees it in clear.
The merchants service deletes the entry when the key is revoked or rotated.
"""

import json
import time
from dataclasses import dataclass

import httpx
from payplane_core.apikeys import KEY_PREFIXES, hash_key, hashes_match, key_cache_key
from payplane_core.crypto import SecretBox, SecretBoxError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.denials import Denied, unavailable

MAX_KEY_LENGTH = 200


@dataclass(frozen=True, slots=True)
class KeyRecord:
    key_id: str
    key_hash: str
    kind: str
    scopes: frozenset[str]
    merchant_id: str
    merchant_status: str
    expires_at: float | None
    revoked: bool
    signing_secret: str | None
    requests_per_second: float
    burst: int
    payments_per_month: int


def bearer_key(authorization: str | None) -> str:
    if not authorization:
        raise Denied(
            401, "key-missing", "Send Authorization: Bearer <api key>.", www_authenticate="Bearer"
        )
    scheme, _, key = authorization.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise Denied(
            401,
            "key-malformed",
            "Authorization must be: Bearer <api key>.",
            www_authenticate="Bearer",
        )
    if not key.startswith(KEY_PREFIXES) or len(key) > MAX_KEY_LENGTH or not key.isascii():
        raise Denied(
            401,
            "key-unknown",
            "This API key is not known.",
            www_authenticate='Bearer error="invalid_token"',
        )
    return key


def _cache_context(key_id: str) -> str:
    return f"gateway-cache:{key_id}:signing_secret"


def _to_cache(resolved: dict, box: SecretBox) -> str:
    entry = dict(resolved)
    secret = entry.pop("signing_secret", None)
    entry["signing_secret_enc"] = (
        box.encrypt(secret, context=_cache_context(entry["key_id"])) if secret else None
    )
    return json.dumps(entry, separators=(",", ":"))


def _from_cache(raw: bytes, box: SecretBox) -> KeyRecord | None:
    entry = json.loads(raw)
    if entry.get("unknown"):
        return None
    enc = entry.get("signing_secret_enc")
    return KeyRecord(
        key_id=entry["key_id"],
        key_hash=entry["key_hash"],
        kind=entry["kind"],
        scopes=frozenset(entry["scopes"]),
        merchant_id=entry["merchant_id"],
        merchant_status=entry["merchant_status"],
        expires_at=entry["expires_at"],
        revoked=entry["revoked"],
        signing_secret=box.decrypt(enc, context=_cache_context(entry["key_id"])) if enc else None,
        requests_per_second=entry["rate_limit"]["requests_per_second"],
        burst=entry["rate_limit"]["burst"],
        payments_per_month=entry["quota"]["payments_per_month"],
    )


async def _fetch(merchants: httpx.AsyncClient, key_hash: str) -> dict | None:
    try:
        response = await merchants.post("/internal/v1/keys/resolve", json={"key_hash": key_hash})
    except httpx.HTTPError:
        raise unavailable("The merchants service") from None
    if response.status_code == 404:
        return None
    if response.status_code != 200:
        raise unavailable("The merchants service")
    return response.json()


async def resolve(
    *,
    key: str,
    redis: Redis,
    merchants: httpx.AsyncClient,
    box: SecretBox,
    ttl_seconds: int,
    unknown_ttl_seconds: int,
) -> KeyRecord:
    """The record behind ``key``, checked (revoked, expired, merchant); raises Denied."""
    key_hash = hash_key(key)
    cache_key = key_cache_key(key_hash)
    try:
        raw = await redis.get(cache_key)
        if raw is None:
            resolved = await _fetch(merchants, key_hash)
            raw = _to_cache(resolved, box).encode() if resolved is not None else b'{"unknown":true}'
            await redis.set(
                cache_key, raw, ex=ttl_seconds if resolved is not None else unknown_ttl_seconds
            )
        record = _from_cache(raw, box)
    except RedisError:
        raise unavailable("Redis") from None
    except (SecretBoxError, KeyError, ValueError):
        # A cache entry we cannot read (e.g. encryption keys rotated): forget it, ask again.
        await redis.delete(cache_key)
        raise unavailable("The key cache") from None
    if record is None or not hashes_match(record.key_hash, key):
        raise Denied(
            401,
            "key-unknown",
            "This API key is not known.",
            www_authenticate='Bearer error="invalid_token"',
        )
    check_usable(record)
    return record


def check_usable(record: KeyRecord, now: float | None = None) -> None:
    """Checked on every request, cached or not, so a cached key cannot outlive its expiry."""
    if record.revoked:
        raise Denied(
            401,
            "key-revoked",
            "This API key has been revoked.",
            www_authenticate='Bearer error="invalid_token"',
        )
    if record.expires_at is not None and (now or time.time()) >= record.expires_at:
        raise Denied(
            401,
            "key-expired",
            "This API key has expired.",
            www_authenticate='Bearer error="invalid_token"',
        )
    if record.merchant_status != "active":
        raise Denied(403, "merchant-inactive", "This merchant is not active.")
