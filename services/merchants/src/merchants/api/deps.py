"""Request dependencies: settings, sessions, the secret box, Redis, and who may call what."""

from typing import Annotated

from fastapi import Depends, Request
from payplane_core.app import Internal
from payplane_core.crypto import SecretBox
from payplane_core.internal_auth import InternalIdentity
from payplane_core.problems import Problem
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import async_sessionmaker

from merchants.core.config import Settings
from merchants.service import Merchants


# async (they await nothing): FastAPI runs a plain def dependency in its thread pool, a
# thread hop per request for a dictionary lookup.
async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_sessions(request: Request) -> async_sessionmaker:
    return request.app.state.sessions


async def get_box(request: Request) -> SecretBox:
    return request.app.state.box


async def get_redis(request: Request) -> Redis:
    return request.app.state.redis


async def get_merchants(request: Request) -> Merchants:
    return request.app.state.merchants


SettingsDep = Annotated[Settings, Depends(get_settings)]
Sessions = Annotated[async_sessionmaker, Depends(get_sessions)]
Box = Annotated[SecretBox, Depends(get_box)]
RedisDep = Annotated[Redis, Depends(get_redis)]
UseCases = Annotated[Merchants, Depends(get_merchants)]


async def admin_caller(identity: Internal) -> str:
    """Platform services and tools; never a merchant request relayed by the gateway."""
    if identity.caller == "gateway" or identity.merchant_id:
        raise Problem(403, "internal-only", "This operation is not available to merchant requests.")
    return identity.caller


async def gateway_caller(identity: Internal) -> InternalIdentity:
    if identity.caller != "gateway" or identity.merchant_id:
        raise Problem(403, "gateway-only", "Only the gateway resolves keys.")
    return identity


AdminCaller = Annotated[str, Depends(admin_caller)]
GatewayCaller = Annotated[InternalIdentity, Depends(gateway_caller)]
