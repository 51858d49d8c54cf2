"""The internal signature: how a service knows a request came from the gateway (or a peer).

The gateway (and a service calling another) signs method, path with query, caller, merchant id,
key id, scopes, request id and a timestamp with a shared HMAC secret. Services verify it on every
request except health, readiness and metrics, so a request that reaches a service without going
through the gateway is refused with 401 even if the network let it through.
"""

import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

CALLER = "x-payplane-caller"
MERCHANT_ID = "x-payplane-merchant-id"
KEY_ID = "x-payplane-key-id"
SCOPES = "x-payplane-scopes"
TIMESTAMP = "x-payplane-timestamp"
SIGNATURE = "x-payplane-signature"
REQUEST_ID = "x-request-id"

# Every header a client must never be able to set itself (the ingress strips them all).
INTERNAL_HEADERS = (CALLER, MERCHANT_ID, KEY_ID, SCOPES, TIMESTAMP, SIGNATURE)

_VERSION = "payplane-internal-v1"


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


def _signature(secret: str, fields: Sequence[str]) -> str:
    if any("\n" in f for f in fields):
        raise InternalAuthError("a signed field contains a newline")
    message = "\n".join((_VERSION, *fields)).encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed_headers(
    secret: str,
    *,
    method: str,
    path: str,
    caller: str,
    request_id: str,
    merchant_id: str = "",
    key_id: str = "",
    scopes: Sequence[str] = (),
    now: float | None = None,
) -> dict[str, str]:
    """Headers to add to an internal request. ``path`` includes the query string."""
    timestamp = str(int(now if now is not None else time.time()))
    scope_list = ",".join(sorted(scopes))
    fields = (method.upper(), path, caller, merchant_id, key_id, scope_list, request_id, timestamp)
    return {
        CALLER: caller,
        MERCHANT_ID: merchant_id,
        KEY_ID: key_id,
        SCOPES: scope_list,
        REQUEST_ID: request_id,
        TIMESTAMP: timestamp,
        SIGNATURE: _signature(secret, fields),
    }


def verify(
    secrets: Sequence[str],
    headers: Mapping[str, str],
    *,
    method: str,
    path: str,
    max_age_seconds: int,
    now: float | None = None,
) -> InternalIdentity:
    """Check the signature against every accepted secret, in constant time per comparison."""
    given = headers.get(SIGNATURE)
    if not given:
        raise InternalAuthError("missing internal signature")
    try:
        timestamp = int(headers.get(TIMESTAMP, ""))
    except ValueError:
        raise InternalAuthError("malformed internal timestamp") from None
    current = now if now is not None else time.time()
    if abs(current - timestamp) > max_age_seconds:
        raise InternalAuthError("internal signature expired")
    fields = (
        method.upper(),
        path,
        headers.get(CALLER, ""),
        headers.get(MERCHANT_ID, ""),
        headers.get(KEY_ID, ""),
        headers.get(SCOPES, ""),
        headers.get(REQUEST_ID, ""),
        str(timestamp),
    )
    valid = False
    for secret in secrets:
        valid |= hmac.compare_digest(_signature(secret, fields), given)
    if not valid:
        raise InternalAuthError("invalid internal signature")
    return InternalIdentity(
        caller=fields[2],
        merchant_id=fields[3],
        key_id=fields[4],
        scopes=frozenset(s for s in fields[5].split(",") if s),
        request_id=fields[6],
    )


# Scopes a key can carry; the gateway enforces them and services check them again.
SCOPE_PAYMENTS_READ = "payments:read"
SCOPE_PAYMENTS_WRITE = "payments:write"
