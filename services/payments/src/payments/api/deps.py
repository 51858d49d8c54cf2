"""Request dependencies: settings, clock, database, quota ledger and the merchant behind the
request."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from payplane_core.app import Internal
from payplane_core.clock import Clock
from payplane_core.context import request_id_var
from payplane_core.internal_auth import SCOPE_PAYMENTS_READ, SCOPE_PAYMENTS_WRITE
from payplane_core.problems import Problem
from payplane_core.strictjson import refuse_duplicate_fields
from payplane_core.telemetry import carrier
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from payments.core.config import Settings
from payments.quota import QuotaLedger
from payments.snapshots import Snapshots


# async (they await nothing): FastAPI runs a plain def dependency in its thread pool, a
# thread hop per request for a dictionary lookup.
async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_engine(request: Request) -> AsyncEngine:
    return request.app.state.engine


async def get_sessions(request: Request) -> async_sessionmaker:
    return request.app.state.sessions


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessions() as session:
        yield session


async def get_clock(request: Request) -> Clock:
    return request.app.state.clock


async def get_quota(request: Request) -> QuotaLedger | None:
    return request.app.state.quota


async def get_snapshots(request: Request) -> Snapshots:
    return request.app.state.snapshots


SettingsDep = Annotated[Settings, Depends(get_settings)]
ClockDep = Annotated[Clock, Depends(get_clock)]
QuotaDep = Annotated[QuotaLedger | None, Depends(get_quota)]
Engine = Annotated[AsyncEngine, Depends(get_engine)]
Sessions = Annotated[async_sessionmaker, Depends(get_sessions)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
SnapshotsDep = Annotated[Snapshots, Depends(get_snapshots)]


def _merchant_with(scope: str):
    async def dependency(identity: Internal) -> str:
        # The gateway already checked the key and its scopes; check again (defence in depth).
        if identity.caller != "gateway" or not identity.merchant_id:
            raise Problem(401, "internal-auth", "Not a merchant request from the gateway.")
        if scope not in identity.scopes:
            raise Problem(403, "missing-scope", f"This key lacks the {scope} scope.")
        return identity.merchant_id

    return dependency


MerchantReader = Annotated[str, Depends(_merchant_with(SCOPE_PAYMENTS_READ))]
MerchantWriter = Annotated[str, Depends(_merchant_with(SCOPE_PAYMENTS_WRITE))]


async def require_json(request: Request) -> None:
    # Read from the request, not declared as a header parameter: the request body's media type
    # is documented by the OpenAPI requestBody, and a Content-Type "parameter" there told
    # clients (and fuzzers) that any value was acceptable.
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise Problem(415, "unsupported-media-type", "Send the body as application/json.")
    refuse_duplicate_fields(await request.body())


def trace_headers(request: Request) -> dict[str, str]:
    """What travels on with the events: the request id and W3C trace context."""
    return {"x-request-id": request_id_var.get()} | carrier(request.headers)
