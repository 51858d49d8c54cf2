"""Internal-signature keys for the tests, one per caller as in a deployment, and signers.

``internal("notifier")`` is the settings a service under test needs: its own private key and
every caller's public key (each service still accepts only its INTERNAL_ALLOWED_CALLERS).
"""

from collections.abc import Generator, Sequence

import httpx
from payplane_core.internal_auth import (
    SCOPE_PAYMENTS_READ,
    SCOPE_PAYMENTS_WRITE,
    generate_key,
    load_private_key,
    public_key,
    signed_headers,
)

WRITE_SCOPES = (SCOPE_PAYMENTS_READ, SCOPE_PAYMENTS_WRITE)
READ_SCOPES = (SCOPE_PAYMENTS_READ,)
CALLERS = ("gateway", "payments", "providers", "webhooks", "notifier", "cli", "operator")
KEYS = {caller: generate_key() for caller in CALLERS}
CALLER_KEYS = [f"{caller}:{public_key(key)}" for caller, key in KEYS.items()]


# Webhook receivers in the tests listen on loopback: allowed explicitly (payplane_core.egress).
LOOPBACK_ALLOWLIST = ["127.0.0.1/32", "::1/128"]


def internal(service: str = "") -> dict:
    """Settings keywords for ``service`` under test (local mode, its key, callers' keys)."""
    return {
        "ENVIRONMENT": "local",
        "INTERNAL_SIGNING_KEY": KEYS.get(service, ""),
        "INTERNAL_CALLER_KEYS": CALLER_KEYS,
    }


def internal_env(service: str = "") -> dict[str, str]:
    """The same as environment variables, for a service run as a subprocess."""
    return {k: ",".join(v) if isinstance(v, list) else v for k, v in internal(service).items()}


class GatewayAuth(httpx.Auth):
    """Signs as ``caller`` (the gateway unless told) for ``audience``, with a merchant identity."""

    requires_request_body = True

    def __init__(
        self,
        *,
        audience: str,
        merchant_id: str = "",
        scopes: Sequence[str] = WRITE_SCOPES,
        caller: str = "gateway",
        key_id: str = "key_test",
        key: str | None = None,
        now: float | None = None,
        probe: bool = False,
    ) -> None:
        self.key = load_private_key(key or KEYS[caller])
        self.audience = audience
        self.merchant_id = merchant_id
        self.scopes = scopes
        self.caller = caller
        self.key_id = key_id
        self.now = now
        self.probe = probe

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers.update(
            signed_headers(
                self.key,
                method=request.method,
                path=request.url.raw_path.decode(),
                caller=self.caller,
                audience=self.audience,
                body=request.content,
                request_id=request.headers.get("x-request-id", "req-test"),
                merchant_id=self.merchant_id,
                key_id=self.key_id,
                scopes=self.scopes,
                probe=self.probe,
                now=self.now,
            )
        )
        yield request
