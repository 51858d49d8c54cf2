"""Merchant-side request signing with an INDEPENDENT RFC 9421 client library
(``requests-http-signature``), never with payplane's own code, plus a helper that hands a signed
request to the gateway exactly as Envoy's ext_authz would (method kept, ``/authz`` + path).
"""

import datetime
import json
import secrets
from typing import Any

import httpx
import requests
from requests_http_signature import HTTPSignatureAuth, algorithms

PUBLIC_BASE = "http://127.0.0.1:8080"  # what the merchant thinks it talks to (the ingress)

# Headers Envoy passes to ext_authz (host, method, path, content-length and authorization are
# always passed), plus "date": requests-http-signature covers Date whenever it sets it.
ENVOY_PASSES = (
    "authorization",
    "signature",
    "signature-input",
    "content-digest",
    "content-type",
    "idempotency-key",
    "x-request-id",
    "x-forwarded-for",
    "host",
    "date",
)


class MerchantSigner(HTTPSignatureAuth):
    """requests-http-signature, with the created time and nonce under test control."""

    def __init__(
        self,
        *,
        key_id: str,
        secret: str,
        created_offset: float = 0.0,
        nonce: str | None = None,
        use_nonce: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            signature_algorithm=algorithms.HMAC_SHA256,
            key=secret.encode(),
            key_id=key_id,
            use_nonce=use_nonce,
            **kwargs,
        )
        self.created_offset = created_offset
        self.fixed_nonce = nonce

    def get_created(self, request: requests.PreparedRequest) -> datetime.datetime:
        created = datetime.datetime.now() + datetime.timedelta(seconds=self.created_offset)
        self.add_date(request, timestamp=int(created.timestamp()))
        return created

    def get_nonce(self, request: requests.PreparedRequest) -> str | None:
        return self.fixed_nonce or super().get_nonce(request)


def signed_request(
    method: str,
    path: str,
    *,
    api_key: str,
    key_id: str | None = None,
    secret: str | None = None,
    body: Any = None,
    base: str = PUBLIC_BASE,
    **signer: Any,
) -> requests.PreparedRequest:
    """A merchant's request; signed when ``secret`` is given (default components: the
    library's own defaults, @method @authority @target-uri, plus Content-Digest)."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": f"Bearer {api_key}"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    prepared = requests.Request(method, base + path, headers=headers, data=data).prepare()
    if secret is not None:
        assert key_id is not None
        MerchantSigner(key_id=key_id, secret=secret, **signer)(prepared)
    return prepared


async def ask_gateway(
    client: httpx.AsyncClient,
    prepared: requests.PreparedRequest,
    *,
    method: str | None = None,
    path: str | None = None,
    body: bytes | None = None,
) -> httpx.Response:
    """Hand the request to the gateway as Envoy does; ``method``/``path``/``body`` tamper."""
    url = httpx.URL(prepared.url)
    target = path or (url.raw_path.decode())
    headers = {k.lower(): v for k, v in prepared.headers.items() if k.lower() in ENVOY_PASSES}
    headers["host"] = url.netloc.decode()
    content = body if body is not None else (prepared.body or b"")
    return await client.request(
        method or prepared.method, "/authz" + target, headers=headers, content=content
    )


def new_nonce() -> str:
    return secrets.token_urlsafe(16)
