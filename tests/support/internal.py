"""Sign requests as the gateway would, for tests that call a service directly."""

from collections.abc import Generator, Sequence

import httpx
from payplane_core.internal_auth import SCOPE_PAYMENTS_READ, SCOPE_PAYMENTS_WRITE, signed_headers

WRITE_SCOPES = (SCOPE_PAYMENTS_READ, SCOPE_PAYMENTS_WRITE)
READ_SCOPES = (SCOPE_PAYMENTS_READ,)


class GatewayAuth(httpx.Auth):
    def __init__(
        self,
        secret: str,
        *,
        merchant_id: str = "",
        scopes: Sequence[str] = WRITE_SCOPES,
        caller: str = "gateway",
        key_id: str = "key_test",
        now: float | None = None,
    ) -> None:
        self.secret = secret
        self.merchant_id = merchant_id
        self.scopes = scopes
        self.caller = caller
        self.key_id = key_id
        self.now = now

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers.update(
            signed_headers(
                self.secret,
                method=request.method,
                path=request.url.raw_path.decode(),
                caller=self.caller,
                request_id=request.headers.get("x-request-id", "req-test"),
                merchant_id=self.merchant_id,
                key_id=self.key_id,
                scopes=self.scopes,
                now=self.now,
            )
        )
        yield request
