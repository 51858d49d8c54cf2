"""httpx auth that adds the internal signature, for one service (or tool) calling another.

The one way to sign an internal request: ``InternalSigner(key, caller=..., audience=...)``, or
``settings.internal_signer(audience)`` inside a service (its own key, signing as its name).
"""

from collections.abc import Generator

import httpx

from payplane_core.context import accept_or_new_request_id, request_id_var
from payplane_core.internal_auth import MERCHANT_ID, load_private_key, signed_headers


class InternalSigner(httpx.Auth):
    """Signs each request as ``caller`` for ``audience``; keeps the request id for tracing."""

    requires_request_body = True  # the body's digest is signed

    def __init__(self, key: str, *, caller: str, audience: str) -> None:
        self._key = load_private_key(key)
        self.caller = caller
        self.audience = audience

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request_id = accept_or_new_request_id(
            request.headers.get("x-request-id") or request_id_var.get()
        )
        request.headers.update(
            signed_headers(
                self._key,
                method=request.method,
                path=request.url.raw_path.decode("latin-1"),
                caller=self.caller,
                audience=self.audience,
                request_id=request_id,
                body=request.content,
                merchant_id=request.headers.get(MERCHANT_ID, ""),
            )
        )
        yield request
