"""httpx auth that adds the internal signature, for one service calling another."""

from collections.abc import Generator

import httpx

from payplane_core.context import accept_or_new_request_id, request_id_var
from payplane_core.internal_auth import signed_headers


class InternalSigner(httpx.Auth):
    """Signs each outgoing request as ``caller``; keeps the current request id for tracing."""

    def __init__(self, secret: str, caller: str) -> None:
        self.secret = secret
        self.caller = caller

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request_id = accept_or_new_request_id(
            request.headers.get("x-request-id") or request_id_var.get()
        )
        request.headers.update(
            signed_headers(
                self.secret,
                method=request.method,
                path=request.url.raw_path.decode("latin-1"),
                caller=self.caller,
                request_id=request_id,
                merchant_id=request.headers.get("x-payplane-merchant-id", ""),
            )
        )
        yield request
