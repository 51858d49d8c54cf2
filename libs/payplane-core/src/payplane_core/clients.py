"""Typed clients of the internal APIs, for the platform's own tools (the operator, the CLI).

One factory, ``internal_http``, makes every signed client from the caller's ``InternalSigner``
(its own key, the service it calls as audience): how callers sign changes there, nowhere else.
Errors split in two, because callers treat them differently: ``Unavailable`` (network error,
5xx, 503: retry later) and ``Refused`` (a 4xx problem: the request is wrong, retrying will not
help).
"""

from typing import Any

import httpx

from payplane_core import http
from payplane_core.internal_client import InternalSigner


class ServiceError(RuntimeError):
    def __init__(self, service: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{service}: {message}")
        self.service = service
        self.status = status


class Unavailable(ServiceError):
    """Not reachable, or answered 5xx: a temporary condition."""


class Refused(ServiceError):
    """A 4xx problem (RFC 9457): the request cannot succeed as it is."""

    def __init__(self, service: str, status: int, problem: dict[str, Any]) -> None:
        detail = problem.get("detail") or problem.get("title") or "refused"
        super().__init__(service, f"refused ({status}): {detail}", status)
        self.problem = problem


def internal_http(
    base_url: str, *, signer: InternalSigner, timeout: float = 10, **options: Any
) -> httpx.AsyncClient:
    """The one way a service or tool talks to a service: every request signed by ``signer``
    (``options``: more ``httpx.AsyncClient`` arguments, e.g. a transport)."""
    return http.client(base_url=base_url, auth=signer, timeout=timeout, **options)


class InternalClient:
    service = "service"

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise Unavailable(
                self.service, f"not reachable at {self.http.base_url} ({type(exc).__name__})"
            ) from None
        if response.status_code >= 500:
            raise Unavailable(
                self.service, f"answered {response.status_code}", response.status_code
            )
        if response.status_code >= 400:
            try:
                problem = response.json()
            except ValueError:
                problem = {"detail": response.text[:200]}
            raise Refused(self.service, response.status_code, problem)
        return response

    async def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.call(method, path, **kwargs)
        return response.json() if response.content else None

    async def aclose(self) -> None:
        await self.http.aclose()


class SecretKeeper(InternalClient):
    """A service that keeps secrets sealed with ENCRYPTION_KEYS (merchants, providers)."""

    async def reencrypt_secrets(self) -> int:
        """Re-seal with the first key what older keys sealed; returns how many."""
        return (await self.json("POST", "/internal/v1/secrets/reencrypt"))["reencrypted"]


class MerchantsClient(SecretKeeper):
    service = "merchants"
    base = "/internal/v1/merchants"

    async def create(self, body: dict[str, Any]) -> dict[str, Any]:
        """``{merchant, credentials}``; credentials None if ``external_ref`` already existed."""
        return await self.json("POST", self.base, json=body)

    async def get(self, merchant_id: str) -> dict[str, Any]:
        return await self.json("GET", f"{self.base}/{merchant_id}")

    async def by_name(self, name: str) -> dict[str, Any]:
        return await self.json("GET", f"{self.base}/by-name/{name}")

    async def update(self, merchant_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self.json("PATCH", f"{self.base}/{merchant_id}", json=body)

    async def rotate(self, merchant_id: str, *, grace_seconds: int | None) -> dict[str, Any]:
        body = {} if grace_seconds is None else {"grace_seconds": grace_seconds}
        return await self.json("POST", f"{self.base}/{merchant_id}/credentials/rotate", json=body)

    async def delete(self, merchant_id: str) -> None:
        """Revokes every key and deactivates the merchant; a gone merchant is not an error."""
        try:
            await self.call("DELETE", f"{self.base}/{merchant_id}")
        except Refused as exc:
            if exc.status != 404:
                raise


class ProvidersClient(SecretKeeper):
    service = "providers"
    base = "/internal/v1/providers"

    async def put(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self.json("PUT", f"{self.base}/{name}", json=body)

    async def list(self) -> list[dict[str, Any]]:
        return (await self.json("GET", self.base))["data"]

    async def disable(self, name: str) -> None:
        try:
            await self.call("DELETE", f"{self.base}/{name}")
        except Refused as exc:
            if exc.status != 404:
                raise


class NotifierClient(InternalClient):
    service = "notifier"
