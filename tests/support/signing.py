"""Merchant-side request signing with an INDEPENDENT RFC 9421 client library
(``requests-http-signature``), never with payplane's own code, plus a helper that hands a signed
request to the gateway exactly as Envoy's ext_authz would (method kept, ``/authz`` + path).
"""

import datetime
import json
import secrets
from collections import Counter
from collections.abc import Generator
from typing import Any

import httpx
import requests
from payplane_core.internal_auth import InternalIdentity, parse_caller_keys
from payplane_core.internal_auth import verify as verify_internal
from requests_http_signature import HTTPSignatureAuth, algorithms

from tests.support.internal import CALLER_KEYS

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


def signed_create(creds: dict, body: Any = None, **signer: Any) -> requests.PreparedRequest:
    """A merchant's signed ``POST /api/v1/payments`` (``creds``: its issued credentials)."""
    return signed_request(
        "POST",
        "/api/v1/payments",
        api_key=creds["api_key"],
        key_id=creds["api_key_id"],
        secret=creds["signing_secret"],
        body={"amount": 100, "currency": "EUR"} if body is None else body,
        **signer,
    )


def upstream_identity(
    allowed: httpx.Response, prepared: requests.PreparedRequest, *, audience: str = "payments"
) -> InternalIdentity:
    """The gateway's allow headers, verified exactly as the upstream service will."""
    url = httpx.URL(prepared.url)
    return verify_internal(
        parse_caller_keys(CALLER_KEYS),
        allowed.headers,
        method=prepared.method or "",
        path=url.raw_path.decode(),
        body=prepared.body or b"",
        audience=audience,
        max_age_seconds=30,
    )


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


class SignedAsMerchant(httpx.Auth):
    """An httpx hook that authenticates each request exactly as a merchant's ``requests`` client
    does (``tests.support.platform.Client``): reads carry the read key, writes carry the write
    key and are signed by requests-http-signature (RFC 9421) over the same method, URL and body.
    ``statuses`` counts the answers (a test shows its requests got past the gateway).
    """

    requires_request_body = True

    def __init__(self, client: Any) -> None:
        self.client = client  # a tests.support.platform.Client
        self.statuses: Counter[int] = Counter()

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        merchant = self.client.merchant
        if request.method in ("GET", "HEAD"):
            request.headers["Authorization"] = f"Bearer {merchant.read_key}"
            self.statuses[(yield request).status_code] += 1
            return
        request.headers["Authorization"] = f"Bearer {merchant.api_key}"
        prepared = requests.Request(
            request.method, str(request.url), headers=dict(request.headers), data=request.content
        ).prepare()
        self.client.signer()(prepared)
        for name in ("signature", "signature-input", "content-digest", "date"):
            if name in prepared.headers:
                request.headers[name] = prepared.headers[name]
        self.statuses[(yield request).status_code] += 1
