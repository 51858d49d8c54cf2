"""Request dependencies: settings, sessions, the secret box, Redis, and who may call what."""

import logging
from collections.abc import Iterable
from typing import Annotated

from fastapi import Depends, Request
from payplane_core.apikeys import key_cache_key
from payplane_core.app import Internal
from payplane_core.crypto import SecretBox
from payplane_core.internal_auth import InternalIdentity
from payplane_core.problems import Problem
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import async_sessionmaker

from merchants.core.config import Settings

log = logging.getLogger(__name__)


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_sessions(request: Request) -> async_sessionmaker:
    return request.app.state.sessions


async def get_box(request: Request) -> SecretBox:
    return request.app.state.box


async def get_redis(request: Request) -> Redis:
    return request.app.state.redis


SettingsDep = Annotated[Settings, Depends(get_settings)]
Sessions = Annotated[async_sessionmaker, Depends(get_sessions)]
Box = Annotated[SecretBox, Depends(get_box)]
RedisDep = Annotated[Redis, Depends(get_redis)]


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


async def drop_cached_keys(redis: Redis, key_hashes: Iterable[str]) -> None:
    """After a commit that revoked or changed keys: the gateway must re-read them.

    If Redis is down the change still holds; the gateway's cache TTL bounds the delay.
    """
    names = [key_cache_key(h) for h in key_hashes]
    if not names:
        return
    try:
        await redis.delete(*names)
    except Exception as exc:  # noqa: BLE001 - the database change is what matters
        log.warning("could not drop cached keys", extra={"count": len(names), "error": repr(exc)})


def rotation_grace(requested: int | None, settings: Settings) -> int:
    """How long a rotated key stays valid: as asked, else the configured default."""
    return requested if requested is not None else settings.KEY_ROTATION_GRACE_SECONDS
