"""Payments service under test: in-process app clients and row counts."""

import httpx
from sqlalchemy import text

from tests.support.internal import GatewayAuth


def client_for(app, **auth) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
        base_url="http://payments.test",
        auth=GatewayAuth(audience="payments", **auth) if auth else None,
    )


async def count(db, table: str, merchant_id: str) -> int:
    async with db.connect() as conn:
        return await conn.scalar(
            text(f"SELECT count(*) FROM {table} WHERE merchant_id = :m"),  # noqa: S608 - test table name
            {"m": merchant_id},
        )
