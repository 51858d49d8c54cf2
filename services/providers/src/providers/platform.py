"""Internally signed calls to the payments and merchants services."""

import logging
from typing import Any

import httpx
from payplane_core.merchant_version import READ_HERE, VersionedCache
from redis.asyncio import Redis

log = logging.getLogger(__name__)


class Unavailable(Exception):
    """A platform service could not be reached or answered 5xx: try again later."""


class PaymentUnknown(Exception):
    """payments has no such payment (404): nothing to report it to, retrying cannot help."""


class PaymentsClient:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def report(
        self,
        payment_id: str,
        *,
        type_: str,
        status: str | None = None,
        provider: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> bool:
        """Add a timeline step (and move the status). False when payments refused the
        transition (409: the payment moved on without us), which is logged, not retried."""
        body: dict[str, Any] = {"type": type_, "source": "providers", "detail": detail or {}}
        if status is not None:
            body["status"] = status
        if provider is not None:
            body["provider"] = provider
        try:
            response = await self.http.post(f"/internal/v1/payments/{payment_id}/events", json=body)
        except httpx.HTTPError as exc:
            raise Unavailable(f"payments unreachable: {type(exc).__name__}") from None
        if response.status_code == 409:
            log.warning(
                "payments refused the transition",
                extra={"payment_id": payment_id, "event": type_, "answer": response.text[:300]},
            )
            return False
        if response.status_code >= 500 or response.status_code in (401, 429):
            raise Unavailable(f"payments answered {response.status_code}")
        if response.status_code == 404:
            raise PaymentUnknown(f"payments has no payment {payment_id}")
        response.raise_for_status()
        return True


class MerchantsClient:
    """A merchant's allowed providers, cached per merchant and used only while the merchant's
    version in Redis (``payplane_core.merchant_version``, bumped by the merchants service after
    every change) is the one read before the fetch: a change applies to the next payment
    routed. Without Redis, every payment asks the merchants service."""

    def __init__(
        self, http: httpx.AsyncClient | None, redis: Redis | None = None, cache_seconds: float = 30
    ) -> None:
        self.http = http
        self._cache: VersionedCache[list[str] | None] = VersionedCache(redis, seconds=cache_seconds)

    async def allowed_providers(
        self, merchant_id: str, version: Any = READ_HERE
    ) -> list[str] | None:
        """None: no restriction (no merchants service configured, or an empty list).
        ``version``: the reply to a GET of ``version_key``, if the caller read it."""
        if self.http is None:
            return None
        # An unknown merchant ([]: allowed nowhere) is not kept: it may be created later.
        return await self._cache.get(
            merchant_id,
            lambda: self._fetch(merchant_id),
            keep=lambda allowed: allowed != [],
            version=version,
        )

    def version_key(self, merchant_id: str) -> str | None:
        """What to read for ``allowed_providers``' ``version``; None: nothing is read."""
        return None if self.http is None else self._cache.version_key(merchant_id)

    async def _fetch(self, merchant_id: str) -> list[str] | None:
        assert self.http is not None
        try:
            response = await self.http.get(f"/internal/v1/merchants/{merchant_id}")
        except httpx.HTTPError as exc:
            raise Unavailable(f"merchants unreachable: {type(exc).__name__}") from None
        if response.status_code == 404:
            return []  # unknown merchant: allowed nowhere (routing will find no provider)
        if not response.is_success:
            raise Unavailable(f"merchants answered {response.status_code}")
        allowed = response.json().get("allowed_providers") or None
        return list(allowed) if allowed else None
