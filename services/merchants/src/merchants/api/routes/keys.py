"""Keys of a merchant (issue, list, rotate, revoke) and key resolution for the gateway."""

from datetime import timedelta

from fastapi import APIRouter
from payplane_core.problems import Problem

from merchants import service
from merchants.api.deps import AdminCaller, Box, GatewayCaller, Sessions, UseCases
from merchants.api.routes.merchants import not_found
from merchants.schemas import (
    KeyIssue,
    KeyIssued,
    KeyOut,
    KeyResolve,
    KeyRotate,
    KeyRotated,
    Quota,
    RateLimit,
    ResolvedKey,
)
from merchants.views import key_out

router = APIRouter(prefix="/internal/v1/merchants/{merchant_id}/keys", tags=["keys"])
resolve_router = APIRouter(prefix="/internal/v1/keys", tags=["keys"])


def key_not_found(key_id: str) -> Problem:
    return Problem(404, "key-not-found", f"No key {key_id} for this merchant.")


@router.get("", response_model=list[KeyOut])
async def list_keys(merchant_id: str, _: AdminCaller, sessions: Sessions) -> list[KeyOut]:
    async with sessions() as session:
        try:
            await service.get_merchant(session, merchant_id=merchant_id)
        except service.MerchantNotFound:
            raise not_found(merchant_id) from None
        return [key_out(k) for k in await service.list_keys(session, merchant_id=merchant_id)]


@router.post("", status_code=201, response_model=KeyIssued)
async def issue_key(
    merchant_id: str, body: KeyIssue, caller: AdminCaller, sessions: Sessions, box: Box
) -> KeyIssued:
    expires_at = (
        service.now() + timedelta(seconds=body.expires_in_seconds)
        if body.expires_in_seconds is not None
        else None
    )
    try:
        async with sessions.begin() as session:
            await service.get_merchant(session, merchant_id=merchant_id, for_update=True)
            issued = await service.issue_key(
                session,
                box,
                merchant_id=merchant_id,
                kind=body.kind,
                actor=caller,
                expires_at=expires_at,
            )
    except service.MerchantNotFound:
        raise not_found(merchant_id) from None
    return KeyIssued(
        key=key_out(issued.key), secret_key=issued.secret_key, signing_secret=issued.signing_secret
    )


@router.post("/{key_id}/rotate", response_model=KeyRotated)
async def rotate_key(
    merchant_id: str,
    key_id: str,
    body: KeyRotate,
    caller: AdminCaller,
    merchants: UseCases,
) -> KeyRotated:
    try:
        new, old = await merchants.rotate_key(
            merchant_id=merchant_id, key_id=key_id, grace_seconds=body.grace_seconds, actor=caller
        )
    except service.MerchantNotFound:
        raise not_found(merchant_id) from None
    except service.KeyNotFound:
        raise key_not_found(key_id) from None
    except service.KeyInactive:
        raise Problem(
            409, "key-inactive", f"Key {key_id} is revoked, expired or already rotated."
        ) from None
    return KeyRotated(
        key=key_out(new.key),
        secret_key=new.secret_key,
        signing_secret=new.signing_secret,
        old_key=key_out(old),
    )


@router.post("/{key_id}/revoke", response_model=KeyOut)
async def revoke_key(
    merchant_id: str, key_id: str, caller: AdminCaller, merchants: UseCases
) -> KeyOut:
    try:
        key = await merchants.revoke_key(merchant_id=merchant_id, key_id=key_id, actor=caller)
    except service.KeyNotFound:
        raise key_not_found(key_id) from None
    return key_out(key)


@resolve_router.post("/resolve", response_model=ResolvedKey)
async def resolve_key(
    body: KeyResolve, _: GatewayCaller, sessions: Sessions, box: Box
) -> ResolvedKey:
    """The gateway sends the key's hash, never the key itself."""
    async with sessions() as session:
        found = await service.resolve_key(session, box, key_hash=body.key_hash)
    if found is None:
        raise Problem(404, "key-unknown", "No such key.")
    key, merchant, signing_secret = found
    return ResolvedKey(
        key_id=key.id,
        key_hash=key.key_hash,
        kind=key.kind,  # type: ignore[arg-type]
        scopes=list(key.scopes),
        merchant_id=merchant.id,
        merchant_status=merchant.status,
        expires_at=key.expires_at.timestamp() if key.expires_at else None,
        revoked=key.revoked_at is not None,
        signing_secret=signing_secret,
        rate_limit=RateLimit(
            requests_per_second=merchant.requests_per_second, burst=merchant.burst
        ),
        quota=Quota(payments_per_month=merchant.payments_per_month),
    )
