"""Where and with which secret to send a merchant's webhooks: the merchants service, cached."""

import time
from dataclasses import dataclass

import httpx


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
        self, *, base_url: str, auth: httpx.Auth, cache_seconds: float, timeout: float = 5.0
    ) -> None:
        self._client = httpx.AsyncClient(base_url=base_url, auth=auth, timeout=timeout)
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, WebhookTarget]] = {}

    async def target(self, merchant_id: str) -> WebhookTarget:
        cached = self._cache.get(merchant_id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
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
        target = WebhookTarget(url=data.get("webhook_url"), secrets=secrets)
        self._cache[merchant_id] = (time.monotonic() + self._cache_seconds, target)
        return target

    async def aclose(self) -> None:
        await self._client.aclose()
