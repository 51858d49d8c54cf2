"""Provider webhook secrets, read from the providers registry and cached in memory."""

import asyncio
import time

import httpx


class SecretsUnavailable(Exception):
    pass


class ProviderSecrets:
    def __init__(self, http: httpx.AsyncClient, *, ttl: float, min_refresh: float) -> None:
        self.http = http
        self.ttl = ttl
        self.min_refresh = min_refresh
        self._secrets: dict[str, str] = {}
        self._loaded_at = float("-inf")
        self._lock = asyncio.Lock()

    async def get(self, *, claimed: str | None = None) -> dict[str, str]:
        """Fresh enough secrets; an unknown claimed provider triggers an early refresh (a
        provider registered a moment ago), at most once per ``min_refresh`` seconds."""
        if self._stale(claimed):
            async with self._lock:
                if self._stale(claimed):  # not already reloaded by a concurrent request
                    await self._load()
        return self._secrets

    def _stale(self, claimed: str | None) -> bool:
        age = time.monotonic() - self._loaded_at
        if age > self.ttl:
            return True
        return claimed is not None and claimed not in self._secrets and age > self.min_refresh

    async def _load(self) -> None:
        try:
            response = await self.http.get("/internal/v1/providers/webhook-secrets")
            response.raise_for_status()
            data = response.json()["data"]
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            if self._secrets:  # keep serving the last good copy
                return
            raise SecretsUnavailable(f"providers registry: {type(exc).__name__}") from None
        self._secrets = {row["name"]: row["webhook_secret"] for row in data}
        self._loaded_at = time.monotonic()
