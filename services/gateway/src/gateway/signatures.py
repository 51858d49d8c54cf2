"""RFC 9421 verification of a merchant's write, with the http-message-signatures library.

The library checks the signature base and the HMAC; this module adds the contract's policy:
which components must be covered, ``created`` within the allowed skew, a nonce, the key id of
the bearer key, and the Content-Digest (RFC 9530) against the body Envoy forwarded.
"""

import time
from dataclasses import dataclass
from datetime import timedelta

from http_message_signatures import (
    ContentDigest,
    HTTPMessageSignaturesException,
    HTTPMessageVerifier,
    HTTPSignatureKeyResolver,
    InvalidSignature,
    algorithms,
)
from starlette.datastructures import Headers

from gateway.denials import Denied

MAX_NONCE_LENGTH = 128
REQUIRED_COMPONENTS = ("@method", "content-digest")
PATH_COMPONENTS = ('"@path"', '"@target-uri"', '"@request-target"')


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """What the library reads from a request: method, absolute URL and header lines."""

    method: str
    url: str
    headers: Headers


@dataclass(frozen=True, slots=True)
class VerifiedSignature:
    key_id: str
    nonce: str
    created: int


class _OneKey(HTTPSignatureKeyResolver):
    """Only the bearer key's own id resolves: a signature cannot borrow another key."""

    def __init__(self, key_id: str, secret: str) -> None:
        self.key_id = key_id
        self.secret = secret.encode()

    def resolve_public_key(self, key_id: str) -> bytes | None:
        return self.secret if key_id == self.key_id else None


def _verifier(key_id: str, secret: str, skew_seconds: int) -> HTTPMessageVerifier:
    verifier = HTTPMessageVerifier(
        signature_algorithm=algorithms.HMAC_SHA256, key_resolver=_OneKey(key_id, secret)
    )
    verifier.max_clock_skew = timedelta(seconds=skew_seconds)
    return verifier


def _denied(reason: str, detail: str) -> Denied:
    return Denied(403, reason, detail)


def _reason_for(message: str) -> tuple[str, str]:
    """The library's message, turned into a stable reason (and a detail that leaks nothing)."""
    if "in the future" in message:
        return "signature-created-future", "The signature's created time is in the future."
    if '"expires"' in message:
        return "signature-expired", "The signature's expires time has passed."
    if "was not covered" in message:
        return "signature-components-missing", (
            'The signature must cover "@method", "@path" (or "@target-uri") and "content-digest".'
        )
    if "resolve verification key" in message:
        return "signature-keyid-mismatch", "The signature's keyid is not the id of the bearer key."
    if "missing a required" in message or "Expected" in message or "Malformed" in message:
        return "signature-malformed", f"The signature headers are malformed: {message[:200]}"
    if "Unexpected algorithm" in message:
        return "signature-algorithm", "Signatures must use hmac-sha256."
    if "Multiple signatures" in message:
        return "signature-malformed", "Send exactly one signature."
    return "signature-invalid", "The request signature does not verify."


def verify(
    request: SignedRequest,
    *,
    body: bytes,
    key_id: str,
    secret: str,
    skew_seconds: int,
    now: float | None = None,
) -> VerifiedSignature:
    headers = request.headers
    if "signature" not in headers or "signature-input" not in headers:
        raise _denied(
            "signature-missing", "Writes must carry Signature and Signature-Input (RFC 9421)."
        )
    if "content-digest" not in headers:
        raise _denied("content-digest-missing", "Writes must carry a Content-Digest (RFC 9530).")
    try:
        (result,) = _verifier(key_id, secret, skew_seconds).verify(
            request, max_age=None, require_components=REQUIRED_COMPONENTS
        )
    except InvalidSignature as exc:
        raise _denied(*_reason_for(str(exc))) from None
    except (HTTPMessageSignaturesException, ValueError) as exc:
        raise _denied(
            "signature-malformed", f"The signature cannot be checked: {str(exc)[:200]}"
        ) from None
    if not any(component in result.covered_components for component in PATH_COMPONENTS):
        raise _denied(*_reason_for("was not covered"))
    created = result.parameters["created"]
    assert isinstance(created, int)  # the library requires created, as an integer
    if created < (now or time.time()) - skew_seconds:
        raise _denied("signature-created-stale", "The signature was created too long ago.")
    nonce = result.nonce
    if not nonce or len(nonce) > MAX_NONCE_LENGTH:
        raise _denied(
            "signature-nonce-missing", "The signature needs a nonce (at most 128 characters)."
        )
    try:
        ContentDigest.verify(headers["content-digest"], body)
    except InvalidSignature:
        raise _denied(
            "content-digest-mismatch", "Content-Digest does not match the body."
        ) from None
    return VerifiedSignature(key_id=key_id, nonce=nonce, created=created)
