"""Pieces of the provider flow for service-level tests: the real payments, providers, webhooks
and simulator apps, and an ingress stand-in that signs provider webhooks as the gateway does.

(End-to-end tests use the real Envoy + gateway; this stand-in only lets the services be tested
together before and without them.)"""

import httpx
from payplane_core.internal_auth import load_private_key, signed_headers
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.internal import KEYS

ENCRYPTION_KEY = "test-encryption-key"
PROVIDER_SCOPE = "webhooks:provider"


def ingress_stand_in(webhooks_url: str) -> Starlette:
    """Forwards ``POST /api/v1/payments/webhook`` to the webhooks service, body untouched,
    adding the gateway's internal signature (caller gateway, no merchant, provider scope)."""
    client = httpx.AsyncClient(base_url=webhooks_url, timeout=10)

    async def forward(request: Request) -> Response:
        path = request.url.path
        headers = {
            k: v
            for k, v in request.headers.items()
            if k not in ("host", "content-length") and not k.startswith("x-payplane-")
        }
        body = await request.body()
        headers |= signed_headers(
            load_private_key(KEYS["gateway"]),
            method="POST",
            path=path,
            caller="gateway",
            audience="webhooks",
            body=body,
            request_id=request.headers.get("x-request-id", "req-ingress"),
            scopes=[PROVIDER_SCOPE],
        )
        upstream = await client.post(path, content=body, headers=headers)
        return Response(
            upstream.content, upstream.status_code, media_type=upstream.headers.get("content-type")
        )

    return Starlette(routes=[Route("/api/v1/payments/webhook", forward, methods=["POST"])])


def whsec(seed: str) -> str:
    import base64
    import hashlib

    return "whsec_" + base64.b64encode(hashlib.sha256(seed.encode()).digest()).decode()
