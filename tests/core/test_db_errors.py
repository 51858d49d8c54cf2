"""PostgreSQL's own errors, mapped centrally: the value's fault is 4xx, the database's is 503."""

import httpx
import pytest
from fastapi import APIRouter, Request
from payplane_core.app import create_service_app
from payplane_core.db import Statement, create_engine, driver_connection
from payplane_core.settings import ServiceSettings
from sqlalchemy import text

from tests.support.internal import GatewayAuth, internal

UP = "postgresql+asyncpg://payplane:payplane@127.0.0.1:5432/postgres"
DOWN = "postgresql+asyncpg://payplane:payplane@127.0.0.1:1/postgres"  # nothing listens


async def through_sqlalchemy(engine, sql: str, params: dict) -> None:
    async with engine.connect() as conn:
        await conn.execute(text(sql), params)


async def through_driver(engine, sql: str, params: dict) -> None:
    """The hot paths' way: a ``Statement`` on the pooled connection's asyncpg connection."""
    async with driver_connection(engine) as conn:
        await Statement(sql).execute(conn, params)


@pytest.fixture(params=[through_sqlalchemy, through_driver], ids=["sqlalchemy", "driver"])
def run_with(request):
    return request.param


def app_running(sql: str, url: str, params: dict, run_with=through_sqlalchemy):
    router = APIRouter()

    @router.post("/run")
    async def run(request: Request) -> dict:
        engine = create_engine(url, pool_size=1)
        try:
            await run_with(engine, sql, params)
        finally:
            await engine.dispose()
        return {"ok": True}

    settings = ServiceSettings(
        SERVICE_NAME="dberrors", INTERNAL_ALLOWED_CALLERS=["cli"], **internal("dberrors")
    )
    return create_service_app(settings=settings, routers=[router])


async def call(app) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://svc.test",
        auth=GatewayAuth(audience="dberrors", caller="cli"),
    ) as client:
        return await client.post("/run")


async def test_nul_in_text_is_422_not_500(run_with):
    response = await call(app_running("SELECT CAST(:v AS text)", UP, {"v": "a\x00b"}, run_with))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/unstorable-value")


async def test_lone_surrogate_is_422_not_500(run_with):
    response = await call(app_running("SELECT CAST(:v AS text)", UP, {"v": "a\ud800b"}, run_with))
    assert response.status_code == 422, response.text


async def test_nul_escape_in_jsonb_and_out_of_range_are_422(run_with):
    jsonb = await call(
        app_running("SELECT CAST(:v AS jsonb)", UP, {"v": '{"a": "\\u0000"}'}, run_with)
    )
    assert jsonb.status_code == 422, jsonb.text
    overflow = await call(app_running("SELECT CAST(:v AS smallint)", UP, {"v": 10**9}, run_with))
    assert overflow.status_code == 422, overflow.text


async def test_unreachable_database_is_503_with_retry_after(run_with):
    response = await call(app_running("SELECT 1", DOWN, {}, run_with))
    assert response.status_code == 503, response.text
    assert response.json()["type"].endswith("/database-unavailable")
    assert int(response.headers["retry-after"]) >= 1
