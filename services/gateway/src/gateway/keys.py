"""Bearer key resolution: this process's copy first, then the Redis cache, then the merchants
service on a miss.

The cache entry is keyed by the key's SHA-256 hash (the key itself is never stored or sent
anywhere) and the whole entry is sealed with AES-GCM, the hash as associated data: Redis never
sees the signing secret, and whoever can write Redis still cannot point a key at another
merchant, widen its scopes or limits (a forged or moved entry is a miss). The merchants service
deletes the entry when the key is revoked or rotated.

A key this process resolved is kept with the sealed entry it came from (``KnownKeys``) and used
without reading Redis; the admission script, which runs on every request that gets through,
refuses to consume anything unless that same entry is still in Redis, and the gateway then
decides again on a fresh read. So a local copy never outlives a revocation, a rotation or an
expired entry by even one admitted request, and the common request costs one Redis round trip
instead of two. The copies keep signing secrets in this process's memory, where the keys that
open every entry in Redis already are.
"""

import json
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass

import httpx
from payplane_core.apikeys import KEY_PREFIXES, hash_key, hashes_match, key_cache_key
from payplane_core.crypto import SecretBox, SecretBoxError
from payplane_core.strictjson import compact
from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.denials import Denied, unavailable
from gateway.metrics import CACHE_REJECTED

log = logging.getLogger(__name__)

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


@dataclass(frozen=True, slots=True)
class Resolved:
    """A key's record, with the Redis entry it was read from (or written as)."""

    record: KeyRecord
    sealed: bytes

    @property
    def cache_key(self) -> str:
        return key_cache_key(self.record.key_hash)


class KnownKeys:
    """Keys this process resolved, by key hash, the most recently used kept (at most ``size``).

    An entry is only ever a guess: every use of it is checked against Redis by the admission
    script, and any refusal it leads to is decided again on a fresh read (a key re-activated
    or re-scoped is not refused from an old copy)."""

    def __init__(self, size: int) -> None:
        self._entries: OrderedDict[str, Resolved] = OrderedDict()
        self._size = size

    def get(self, key_hash: str) -> Resolved | None:
        found = self._entries.get(key_hash)
        if found is not None:
            self._entries.move_to_end(key_hash)
        return found

    def put(self, key_hash: str, resolved: Resolved) -> None:
        self._entries[key_hash] = resolved
        self._entries.move_to_end(key_hash)
        if len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def drop(self, key_hash: str) -> None:
        self._entries.pop(key_hash, None)


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


def _cache_context(key_hash: str) -> str:
    # Bound to the key's hash: an entry sealed for one key does not open under another.
    return f"gateway-key-cache-v2:{key_hash}"


def _seal(entry: dict, box: SecretBox, key_hash: str) -> bytes:
    """The whole entry (merchant, scopes, limits, signing secret) under AES-GCM."""
    plain = compact(entry)
    return box.encrypt(plain, context=_cache_context(key_hash)).encode()


def _open(raw: bytes, box: SecretBox, key_hash: str) -> dict | None:
    """The entry, or None when it does not authenticate (written by someone else, or sealed
    with a key since rotated away): then it is a miss, never trusted."""
    try:
        return json.loads(box.decrypt(raw.decode("ascii"), context=_cache_context(key_hash)))
    except (SecretBoxError, UnicodeDecodeError, ValueError):
        CACHE_REJECTED.inc()
        log.warning("key cache entry does not authenticate; treated as a miss")
        return None


def _record(entry: dict) -> KeyRecord | None:
    if entry.get("unknown"):
        return None
    return KeyRecord(
        key_id=entry["key_id"],
        key_hash=entry["key_hash"],
        kind=entry["kind"],
        scopes=frozenset(entry["scopes"]),
        merchant_id=entry["merchant_id"],
        merchant_status=entry["merchant_status"],
        expires_at=entry["expires_at"],
        revoked=entry["revoked"],
        signing_secret=entry.get("signing_secret"),
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
) -> Resolved:
    """The record behind ``key`` (raises Denied for an unknown key); whether it may be used
    now (revoked, expired, merchant) is ``check_usable``'s, on every request."""
    key_hash = hash_key(key)
    cache_key = key_cache_key(key_hash)
    try:
        sealed = await redis.get(cache_key)
        entry = _open(sealed, box, key_hash) if sealed is not None else None
        if entry is None:
            resolved = await _fetch(merchants, key_hash)
            entry = resolved if resolved is not None else {"unknown": True}
            ttl = ttl_seconds if resolved is not None else unknown_ttl_seconds
            sealed = _seal(entry, box, key_hash)
            await redis.set(cache_key, sealed, ex=ttl)
        record = _record(entry)
    except RedisError:
        raise unavailable("Redis") from None
    except (KeyError, TypeError):
        # An answer of a shape we do not know: forget it, ask again next time.
        await redis.delete(cache_key)
        raise unavailable("The key cache") from None
    if record is None or not hashes_match(record.key_hash, key):
        raise Denied(
            401,
            "key-unknown",
            "This API key is not known.",
            www_authenticate='Bearer error="invalid_token"',
        )
    return Resolved(record, sealed)


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
