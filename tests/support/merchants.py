"""The merchants service in-process, for any test that needs real merchants and credentials.

    async with merchants_service() as svc:          # migrated payplane_unit_merchants DB
        created = await svc.create("acme", webhook_url="http://127.0.0.1:9/hook")
        created["credentials"]["webhook_secret"]

``svc.client(caller)`` is an httpx client signed as that internal caller; ``svc.transport``
lets another in-process app (the gateway, the notifier) call it as ``MERCHANTS_URL``.
"""

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from merchants.core.config import Settings
from merchants.main import create_app

from tests.support.db import fresh_database
from tests.support.internal import LOOPBACK_ALLOWLIST, GatewayAuth, internal

REDIS_URL = "redis://127.0.0.1:6379/1"  # issue 3's unit-test Redis db
BASE_URL = "http://merchants.test"


@dataclass
class MerchantsService:
    app: Any
    settings: Settings

    @property
    def transport(self) -> httpx.ASGITransport:
        return httpx.ASGITransport(app=self.app, raise_app_exceptions=False)

    def client(self, caller: str = "cli") -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=self.transport,
            base_url=BASE_URL,
            auth=GatewayAuth(audience="merchants", caller=caller, scopes=(), key_id=""),
            timeout=10,
        )

    async def create(self, name: str | None = None, **fields: Any) -> dict[str, Any]:
        body = {"name": name or f"m-{secrets.token_hex(6)}", **fields}
        async with self.client() as c:
            response = await c.post("/internal/v1/merchants", json=body)
        assert response.status_code == 201, response.text
        return response.json()


@asynccontextmanager
async def merchants_service(
    *, db_url: str | None = None, encryption_keys: list[str] | None = None, **settings: Any
) -> AsyncIterator[MerchantsService]:
    url = db_url or await fresh_database("merchants", "merchants")
    config = Settings(
        DATABASE_URL=url,
        **internal("merchants"),
        ENCRYPTION_KEYS=encryption_keys or ["test-encryption-key-1"],
        REDIS_URL=REDIS_URL,
        **({"WEBHOOK_URL_ALLOWLIST": LOOPBACK_ALLOWLIST} | settings),
    )
    app = create_app(config)
    async with app.router.lifespan_context(app):
        yield MerchantsService(app=app, settings=config)
