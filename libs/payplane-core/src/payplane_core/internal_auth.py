"""The internal signature: how a service knows which platform service (or tool) called it.

Every caller (gateway, providers, webhooks, notifier, cli, operator) holds its own Ed25519
private key; a service holds only the public keys of the callers it accepts. So a service that
verifies the gateway's requests cannot sign as the gateway, and a compromised notifier cannot
act as anyone but the notifier. The signed fields are method, path with query, caller, audience
(the target service), merchant id, key id, scopes, request id, timestamp, a random nonce and the
SHA-256 digest of the body: a captured request is refused by any other service, with another
body, after ``max_age_seconds`` or a second time within it (``NonceCache``, per process).

The gateway also marks the one request it admits as the half-open circuit's probe
(``x-payplane-breaker-probe: 1``, see ``payplane_core.breaker``). The mark is signed when present
and only then, so a request without it signs exactly as before (older verifiers still accept
it), while adding the mark to a signed request, or stripping it, breaks the signature.

Keys are 32 raw bytes in unpadded base64url (``generate_key`` / ``public_key``).
"""

import base64
import hashlib
import secrets
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

CALLER = "x-payplane-caller"
AUDIENCE = "x-payplane-audience"
MERCHANT_ID = "x-payplane-merchant-id"
KEY_ID = "x-payplane-key-id"
SCOPES = "x-payplane-scopes"
TIMESTAMP = "x-payplane-timestamp"
NONCE = "x-payplane-nonce"
BODY_DIGEST = "x-payplane-body-sha256"
SIGNATURE = "x-payplane-signature"
PROBE = "x-payplane-breaker-probe"  # "1": the gateway admitted this request as the probe
REQUEST_ID = "x-request-id"

# Every header a client must never be able to set itself (the ingress strips them all).
INTERNAL_HEADERS = (
    CALLER,
    AUDIENCE,
    MERCHANT_ID,
    KEY_ID,
    SCOPES,
    TIMESTAMP,
    NONCE,
    BODY_DIGEST,
    SIGNATURE,
    PROBE,
)
# request.state attribute (scope["state"] key) holding the verified InternalIdentity.
IDENTITY_STATE = "internal_identity"

_VERSION = "payplane-internal-v2"


class InternalAuthError(Exception):
    """The request carries no valid internal signature; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class InternalIdentity:
    caller: str
    merchant_id: str
    key_id: str
    scopes: frozenset[str]
    request_id: str
    probe: bool = False  # the gateway admitted it as the half-open breaker's probe


def verified_identity(scope: Mapping) -> InternalIdentity | None:
    """The identity the signature check stored for this ASGI request (None if it did not run
    or failed): for middleware that must trust only what was signed."""
    return scope.get("state", {}).get(IDENTITY_STATE)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def generate_key() -> str:
    """A new private key (unpadded base64url of the 32-byte Ed25519 seed)."""
    return _b64(secrets.token_bytes(32))


def load_private_key(text: str) -> Ed25519PrivateKey:
    try:
        raw = _unb64(text.strip())
    except ValueError:
        raise ValueError("internal signing key is not base64url") from None
    if len(raw) != 32:
        raise ValueError("internal signing key must be 32 bytes (base64url)")
    return Ed25519PrivateKey.from_private_bytes(raw)


def public_key(private: str) -> str:
    """The public half of ``private``, in the same encoding (what verifiers are given)."""
    return _b64(load_private_key(private).public_key().public_bytes_raw())


def parse_caller_keys(entries: Iterable[str]) -> dict[str, list[Ed25519PublicKey]]:
    """``["gateway:<pub>", "cli:<pub>", ...]`` -> public keys per caller (several: rotation)."""
    keys: dict[str, list[Ed25519PublicKey]] = {}
    for entry in entries:
        caller, sep, encoded = entry.partition(":")
        raw = _unb64(encoded.strip()) if sep else b""
        if not caller.strip() or len(raw) != 32:
            raise ValueError(f"caller key entry must be '<caller>:<base64url key>': {entry[:20]!r}")
        keys.setdefault(caller.strip(), []).append(Ed25519PublicKey.from_public_bytes(raw))
    return keys


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _message(fields: Sequence[str]) -> bytes:
    if any("\n" in f for f in fields):
        raise InternalAuthError("a signed field contains a newline")
    return "\n".join((_VERSION, *fields)).encode()


def signed_headers(
    key: Ed25519PrivateKey,
    *,
    method: str,
    path: str,
    caller: str,
    audience: str,
    request_id: str,
    body: bytes = b"",
    merchant_id: str = "",
    key_id: str = "",
    scopes: Sequence[str] = (),
    probe: bool = False,
    now: float | None = None,
) -> dict[str, str]:
    """Headers to add to an internal request to ``audience``. ``path`` includes the query;
    ``probe`` marks the request the gateway admitted as the half-open breaker's probe."""
    headers = {
        CALLER: caller,
        AUDIENCE: audience,
        MERCHANT_ID: merchant_id,
        KEY_ID: key_id,
        SCOPES: ",".join(sorted(scopes)),
        REQUEST_ID: request_id,
        TIMESTAMP: str(int(now if now is not None else time.time())),
        NONCE: secrets.token_urlsafe(12),
        BODY_DIGEST: body_digest(body),
    }
    if probe:
        headers[PROBE] = "1"
    headers[SIGNATURE] = _b64(key.sign(_message(_fields(method, path, headers))))
    return headers


def _fields(method: str, path: str, headers: Mapping[str, str]) -> tuple[str, ...]:
    signed = (CALLER, AUDIENCE, MERCHANT_ID, KEY_ID, SCOPES, REQUEST_ID, TIMESTAMP, NONCE)
    digest = headers.get(BODY_DIGEST, "")
    fields = (method.upper(), path, *(headers.get(h, "") for h in signed), digest)
    # Signed only when present: unmarked requests keep the message they always had.
    probe = headers.get(PROBE)
    return fields if probe is None else (*fields, probe)


class NonceCache:
    """Nonces seen within the signature's lifetime: a second use is a replay."""

    def __init__(self, max_entries: int = 200_000) -> None:
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._max = max_entries

    def first_use(self, nonce: str, *, expires_at: float, now: float) -> bool:
        while self._seen and (next(iter(self._seen.values())) < now or len(self._seen) > self._max):
            self._seen.popitem(last=False)
        if nonce in self._seen:
            return False
        self._seen[nonce] = expires_at
        return True


def verify(
    caller_keys: Mapping[str, Sequence[Ed25519PublicKey]],
    headers: Mapping[str, str],
    *,
    method: str,
    path: str,
    body: bytes,
    audience: str,
    max_age_seconds: int,
    nonces: NonceCache | None = None,
    now: float | None = None,
) -> InternalIdentity:
    """Check the request was signed by a caller we accept, for us, with this body, just now."""
    given = headers.get(SIGNATURE)
    if not given:
        raise InternalAuthError("missing internal signature")
    try:
        timestamp = int(headers.get(TIMESTAMP, ""))
        signature = _unb64(given)
    except ValueError:
        raise InternalAuthError("malformed internal signature") from None
    current = now if now is not None else time.time()
    if abs(current - timestamp) > max_age_seconds:
        raise InternalAuthError("internal signature expired")
    caller = headers.get(CALLER, "")
    if caller not in caller_keys:
        raise InternalAuthError("caller not accepted by this service")
    if headers.get(AUDIENCE) != audience:
        raise InternalAuthError("signed for another service")
    if headers.get(BODY_DIGEST) != body_digest(body):
        raise InternalAuthError("body does not match the signed digest")
    message = _message(_fields(method, path, headers))
    if not any(_valid(key, signature, message) for key in caller_keys[caller]):
        raise InternalAuthError("invalid internal signature")
    nonce = headers.get(NONCE, "")
    if (
        not nonce
        or nonces is not None
        and not nonces.first_use(nonce, expires_at=timestamp + max_age_seconds, now=current)
    ):
        raise InternalAuthError("internal request replayed")
    return InternalIdentity(
        caller=caller,
        merchant_id=headers.get(MERCHANT_ID, ""),
        key_id=headers.get(KEY_ID, ""),
        scopes=frozenset(s for s in headers.get(SCOPES, "").split(",") if s),
        request_id=headers.get(REQUEST_ID, ""),
        probe=headers.get(PROBE) == "1",
    )


def _valid(key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    try:
        key.verify(signature, message)
    except InvalidSignature:
        return False
    return True


# Scopes a key can carry; the gateway enforces them and services check them again.
SCOPE_PAYMENTS_READ = "payments:read"
SCOPE_PAYMENTS_WRITE = "payments:write"
