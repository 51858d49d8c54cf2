"""The authorization decision for one request Envoy asks about. No FastAPI in here.

Order (cheapest refusal first, nothing consumed before the request is proven genuine):
route -> bearer key (Redis cache, merchants on a miss) -> scope by method -> RFC 9421 signature
on writes -> one Redis script for breaker, nonce, rate limit and quota -> internal signature
(which also marks the half-open breaker's one probe, so payments reports only its outcome).

Redis round trips per request for a key this process has seen: 1 (the admission script,
which also checks that the key's cache entry is still the one decided on), reads and signed
writes alike. Otherwise, or when that entry changed, or when the local copy would refuse the
request: GET the key entry first (2); a cache miss adds one call to the merchants service and
one SET.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from payplane_core import platform
from payplane_core.apikeys import hash_key
from payplane_core.crypto import SecretBox
from payplane_core.internal_auth import (
    SCOPE_PAYMENTS_READ,
    SCOPE_PAYMENTS_WRITE,
    signed_headers,
)
from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.datastructures import Headers

from gateway import keys, signatures
from gateway.admission import Admission, Admitter, Verdict
from gateway.core.config import Settings
from gateway.denials import Denied, unavailable

PAYMENTS_PATH = platform.PAYMENTS_PATH
PROVIDER_WEBHOOK_PATH = platform.PROVIDER_WEBHOOK_PATH
SCOPE_PROVIDER_WEBHOOK = "webhooks:provider"
# The service each public route reaches: the audience its internal signature is made for.
PAYMENTS_SERVICE = "payments"
WEBHOOKS_SERVICE = "webhooks"
READ_METHODS = frozenset({"GET", "HEAD"})
_SUSPICIOUS = ("//", "/./", "/../", "%2f", "%2e", "%5c", "\\")


@dataclass(frozen=True, slots=True)
class Allowed:
    merchant_id: str
    key_id: str
    scopes: tuple[str, ...]
    headers: dict[str, str]


@dataclass
class Gate:
    """What a decision needs; built once per process (see main.lifespan)."""

    settings: Settings
    redis: Redis
    merchants: httpx.AsyncClient
    box: SecretBox
    admitter: Admitter
    signing_key: Ed25519PrivateKey
    known_keys: keys.KnownKeys
    clock: Callable[[], float] = time.time  # key expiry (tests move it instead of sleeping)


def split_target(target: str) -> str:
    """The path of ``/path?query``, refusing spellings that could route differently upstream."""
    path = target.split("?", 1)[0]
    lowered = path.lower()
    if not path.startswith("/") or any(s in lowered for s in _SUSPICIOUS) or path.endswith("/.."):
        raise Denied(400, "path-not-normalized", "The request path is not in normal form.")
    return path


@dataclass(frozen=True, slots=True)
class Call:
    """The request being decided on, as Envoy described it."""

    method: str  # upper case
    target: str  # path and query, exactly as sent
    path: str
    headers: Headers
    body: bytes
    request_id: str


async def authorize(
    gate: Gate,
    *,
    method: str,
    target: str,
    headers: Headers,
    body: bytes,
    request_id: str,
) -> Allowed:
    """Allow (with the upstream's internal signature headers) or raise Denied."""
    call = Call(method.upper(), target, split_target(target), headers, body, request_id)
    if call.path == PROVIDER_WEBHOOK_PATH:
        return _provider_webhook(gate, call)
    _require_payments_route(call.path)
    key = keys.bearer_key(call.headers.get("authorization"))
    key_hash = hash_key(key)
    known = gate.known_keys.get(key_hash)
    if known is not None and (allowed := await _decide(gate, call, known)) is not None:
        return allowed
    # First sight of the key here, or the copy is out of date or refuses: ask Redis.
    gate.known_keys.drop(key_hash)
    fresh = await _key_record(gate, key)
    gate.known_keys.put(key_hash, fresh)
    nonce = _check(gate, call, fresh.record)  # refusals from a fresh read are final
    # Not checked against Redis again: it was just read (or just written, and concurrent
    # misses each write their own sealing of the same answer; the last one stays).
    admission = await _admit(gate, call, fresh, nonce=nonce, check_entry=False)
    return _allow_key(gate, call, fresh.record, admission)


async def _decide(gate: Gate, call: Call, known: keys.Resolved) -> Allowed | None:
    """Allowed, or None when ``known`` may be out of date: it refuses the request, or its
    cache entry is no longer the one in Redis (nothing was consumed then)."""
    try:
        nonce = _check(gate, call, known.record)
    except Denied:
        return None
    admission = await _admit(gate, call, known, nonce=nonce, check_entry=True)
    if admission.verdict is Verdict.KEY_CHANGED:
        return None
    return _allow_key(gate, call, known.record, admission)


def _allow_key(gate: Gate, call: Call, record: keys.KeyRecord, admission: Admission) -> Allowed:
    return _allow(
        gate,
        call,
        audience=PAYMENTS_SERVICE,
        merchant_id=record.merchant_id,
        key_id=record.key_id,
        scopes=tuple(sorted(record.scopes)),
        probe=admission.probe,
    )


def _check(gate: Gate, call: Call, record: keys.KeyRecord) -> str | None:
    """Usable, scoped for the method, and a write's signature verified: its nonce."""
    keys.check_usable(record, gate.clock())
    write = call.method not in READ_METHODS
    _require_scope(record, write=write)
    return _verified_nonce(gate, call, record) if write else None


def _provider_webhook(gate: Gate, call: Call) -> Allowed:
    """Providers sign with their own Standard Webhooks secret; the webhooks service checks it."""
    if call.method != "POST":
        raise Denied(405, "method-not-allowed", "Provider webhooks are POSTed.")
    return _allow(
        gate,
        call,
        audience=WEBHOOKS_SERVICE,
        merchant_id="",
        key_id="",
        scopes=(SCOPE_PROVIDER_WEBHOOK,),
    )


def _require_payments_route(path: str) -> None:
    if path != PAYMENTS_PATH and not path.startswith(PAYMENTS_PATH + "/"):
        raise Denied(404, "route-not-found", "No such API route.")


async def _key_record(gate: Gate, key: str) -> keys.Resolved:
    return await keys.resolve(
        key=key,
        redis=gate.redis,
        merchants=gate.merchants,
        box=gate.box,
        ttl_seconds=gate.settings.KEY_CACHE_TTL_SECONDS,
        unknown_ttl_seconds=gate.settings.UNKNOWN_KEY_CACHE_TTL_SECONDS,
    )


def _require_scope(record: keys.KeyRecord, *, write: bool) -> None:
    needed = SCOPE_PAYMENTS_WRITE if write else SCOPE_PAYMENTS_READ
    if needed not in record.scopes:
        raise Denied(
            403,
            "scope-missing",
            f"This key lacks the {needed} scope"
            + (" (read-only keys may only read)." if write else "."),
        )


def _verified_nonce(gate: Gate, call: Call, record: keys.KeyRecord) -> str:
    """A write's RFC 9421 signature, checked; its nonce is spent later, in the admission."""
    if record.signing_secret is None:  # defence in depth: write keys always have one
        raise Denied(403, "scope-missing", "This key cannot sign writes.")
    host = call.headers.get("host", "localhost")
    verified = signatures.verify(
        signatures.SignedRequest(
            method=call.method,
            url=f"{gate.settings.PUBLIC_SCHEME}://{host}{call.target}",
            headers=call.headers,
        ),
        body=call.body,
        key_id=record.key_id,
        secret=record.signing_secret,
        skew_seconds=gate.settings.SIGNATURE_MAX_SKEW_SECONDS,
    )
    return verified.nonce


async def _admit(
    gate: Gate, call: Call, key: keys.Resolved, *, nonce: str | None, check_entry: bool
) -> Admission:
    """Breaker, nonce, rate limit and quota in one Redis script: admitted, or KEY_CHANGED
    (``check_entry``: ``key``'s cache entry is no longer the one in Redis; nothing consumed),
    or Denied."""
    record = key.record
    try:
        admission = await gate.admitter.admit(
            merchant_id=record.merchant_id,
            key_id=record.key_id,
            nonce=nonce,
            requests_per_second=record.requests_per_second,
            burst=record.burst,
            payment_creation=call.method == "POST" and call.path == PAYMENTS_PATH,
            payments_per_month=record.payments_per_month,
            key_entry=(key.cache_key, key.sealed) if check_entry else None,
        )
    except RedisError:
        raise unavailable("Redis") from None
    if admission.verdict is not Verdict.KEY_CHANGED:
        _raise_unless_admitted(admission.verdict, admission.retry_after_seconds)
    return admission


def _allow(
    gate: Gate,
    call: Call,
    *,
    audience: str,
    merchant_id: str,
    key_id: str,
    scopes: tuple[str, ...],
    probe: bool = False,
) -> Allowed:
    headers = signed_headers(
        gate.signing_key,
        method=call.method,
        path=call.target,
        caller=gate.settings.SERVICE_NAME,
        audience=audience,
        body=call.body,
        request_id=call.request_id,
        merchant_id=merchant_id,
        key_id=key_id,
        scopes=scopes,
        probe=probe,
    )
    return Allowed(merchant_id=merchant_id, key_id=key_id, scopes=scopes, headers=headers)


def _raise_unless_admitted(verdict: Verdict, retry_after: float) -> None:
    if verdict == Verdict.ALLOWED:
        return
    if verdict == Verdict.CIRCUIT_OPEN:
        raise Denied(
            503,
            "circuit-open",
            "Payments are failing upstream; not sending more for now.",
            retry_after_seconds=retry_after,
        )
    if verdict == Verdict.NONCE_REUSED:
        raise Denied(403, "signature-nonce-reused", "This signature nonce was already used.")
    if verdict == Verdict.RATE_LIMITED:
        raise Denied(
            429,
            "rate-limited",
            "Too many requests for this merchant.",
            retry_after_seconds=retry_after,
        )
    raise Denied(
        429,
        "quota-exceeded",
        "The monthly payment quota of this plan is used up.",
        retry_after_seconds=retry_after,
    )
