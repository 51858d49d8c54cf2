"""Background probe of each provider's ``/health``: slow or failing providers are tried last."""

import asyncio
import logging

import httpx
from sqlalchemy.ext.asyncio import async_sessionmaker

from providers import registry

log = logging.getLogger(__name__)


async def probe_once(http: httpx.AsyncClient, sessions: async_sessionmaker) -> dict[str, bool]:
    async with sessions() as session:
        providers = await registry.list_providers(session, enabled_only=True)

    async def check(endpoint: str) -> bool:
        try:
            return (await http.get(f"{endpoint}/health", timeout=1.0)).status_code == 200
        except httpx.HTTPError:
            return False

    results = await asyncio.gather(*(check(p.endpoint) for p in providers))
    return {p.name: ok for p, ok in zip(providers, results, strict=True)}


async def probe_forever(
    http: httpx.AsyncClient,
    sessions: async_sessionmaker,
    unhealthy: set[str],
    health: dict,
    *,
    every: float,
) -> None:
    while True:
        try:
            results = await probe_once(http, sessions)
            health.clear()
            health.update(results)
            unhealthy.clear()
            unhealthy.update(name for name, ok in results.items() if not ok)
        except Exception as exc:  # noqa: BLE001 - the probe must outlive a database blip
            log.warning("provider probe failed", extra={"error": repr(exc)})
        await asyncio.sleep(every)
