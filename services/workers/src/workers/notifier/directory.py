"""Where and with which secret to send a merchant's webhooks: the merchants service, cached
while the merchant's version in Redis is unchanged (``payplane_core.merchant_version``: the
merchants service bumps it after every change, a new URL or a rotated secret included)."""

from dataclasses import dataclass

import httpx
from payplane_core import http
from payplane_core.merchant_version import VersionedCache
from redis.asyncio import Redis


class DirectoryError(Exception):
    """The merchant's webhook target could not be had (the attempt fails and is retried)."""


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    url: str | None
    # The current secret first; during a rotation's grace, the replaced one too.
    secrets: tuple[str, ...]

    def __repr__(self) -> str:  # never print the secrets
        return f"WebhookTarget(url={self.url!r}, secrets=<{len(self.secrets)} redacted>)"


class MerchantDirectory:
    def __init__(
        self,
        *,
        base_url: str,
        auth: httpx.Auth,
        redis: Redis | None,
        cache_seconds: float,
        timeout: float = 5.0,
    ) -> None:
        self._client = http.client(base_url=base_url, auth=auth, timeout=timeout)
        self._cache: VersionedCache[WebhookTarget] = VersionedCache(redis, seconds=cache_seconds)

    async def target(self, merchant_id: str) -> WebhookTarget:
        """Without Redis (none configured, or unreachable) every delivery asks merchants."""
        return await self._cache.get(merchant_id, lambda: self._fetch(merchant_id))

    async def _fetch(self, merchant_id: str) -> WebhookTarget:
        try:
            response = await self._client.get(f"/internal/v1/merchants/{merchant_id}/webhook")
        except httpx.HTTPError as exc:
            raise DirectoryError(f"merchants service unreachable: {type(exc).__name__}") from None
        if response.status_code == 404:
            raise DirectoryError(f"unknown merchant {merchant_id}")
        if response.status_code != 200:
            raise DirectoryError(f"merchants service answered {response.status_code}")
        data = response.json()
        previous = data.get("previous_webhook_secret")
        secrets = (data["webhook_secret"], *([previous] if previous else []))
        return WebhookTarget(url=data.get("webhook_url"), secrets=secrets)

    async def aclose(self) -> None:
        await self._client.aclose()
