"""API keys of a merchant: issue, list, rotate, revoke, resolve. Session-level functions that
never commit (the caller's transaction); secrets come back in clear once and are stored only
hashed (the key) or encrypted (its signing secret)."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from payplane_core.apikeys import hash_key
from payplane_core.crypto import SecretBox
from payplane_core.ids import new_id
from payplane_core.internal_auth import SCOPE_PAYMENTS_READ, SCOPE_PAYMENTS_WRITE
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from merchants import keygen
from merchants.models import ApiKey, Merchant
from merchants.records import audit, get_merchant, is_active, now, signing_context

SCOPES_BY_KIND = {
    "api": [SCOPE_PAYMENTS_READ, SCOPE_PAYMENTS_WRITE],
    "read": [SCOPE_PAYMENTS_READ],
}


class KeyNotFound(Exception):
    pass


class KeyInactive(Exception):
    """The key is revoked, expired or already rotated: it cannot be rotated again."""


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    secret_key: str  # the full key, shown once
    signing_secret: str | None  # api keys only, shown once


async def issue_key(
    session: AsyncSession,
    box: SecretBox,
    *,
    merchant_id: str,
    kind: str,
    actor: str,
    expires_at: datetime | None = None,
) -> IssuedKey:
    key_id = new_id("key")
    secret_key = keygen.new_key(kind)
    signing_secret = keygen.new_signing_secret() if kind == "api" else None
    key = ApiKey(
        id=key_id,
        merchant_id=merchant_id,
        kind=kind,
        prefix=keygen.visible_prefix(secret_key),
        key_hash=hash_key(secret_key),
        scopes=SCOPES_BY_KIND[kind],
        signing_secret_enc=(
            box.encrypt(signing_secret, context=signing_context(key_id)) if signing_secret else None
        ),
        created_at=now(),
        expires_at=expires_at,
        revoked_at=None,
        replaced_by=None,
    )
    session.add(key)
    await session.flush()
    audit(
        session,
        merchant_id=merchant_id,
        type_="key.created",
        actor=actor,
        detail={"key_id": key_id, "kind": kind, "prefix": key.prefix},
    )
    return IssuedKey(key=key, secret_key=secret_key, signing_secret=signing_secret)


async def key_hashes(session: AsyncSession, *, merchant_id: str) -> list[str]:
    return list(
        await session.scalars(select(ApiKey.key_hash).where(ApiKey.merchant_id == merchant_id))
    )


async def list_keys(session: AsyncSession, *, merchant_id: str) -> list[ApiKey]:
    query = (
        select(ApiKey)
        .where(ApiKey.merchant_id == merchant_id)
        .order_by(ApiKey.created_at, ApiKey.id)
    )
    return list(await session.scalars(query))


async def _key_for_update(session: AsyncSession, *, merchant_id: str, key_id: str) -> ApiKey:
    key = await session.scalar(
        select(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.merchant_id == merchant_id)
        .with_for_update()
    )
    if key is None:
        raise KeyNotFound(key_id)
    return key


async def revoke_key(session: AsyncSession, *, merchant_id: str, key_id: str, actor: str) -> ApiKey:
    """Idempotent: revoking a revoked key changes nothing (and records nothing)."""
    key = await _key_for_update(session, merchant_id=merchant_id, key_id=key_id)
    if key.revoked_at is None:
        key.revoked_at = now()
        audit(
            session,
            merchant_id=merchant_id,
            type_="key.revoked",
            actor=actor,
            detail={"key_id": key_id},
        )
    return key


async def rotate_key(
    session: AsyncSession,
    box: SecretBox,
    *,
    merchant_id: str,
    key_id: str,
    grace: timedelta,
    actor: str,
) -> tuple[IssuedKey, ApiKey]:
    """Issue a successor of the same kind; the old key keeps working for ``grace``.

    The old key's expiry only ever moves earlier, so rotating cannot extend a key's life.
    """
    await get_merchant(session, merchant_id=merchant_id, for_update=True)
    old = await _key_for_update(session, merchant_id=merchant_id, key_id=key_id)
    at = now()
    if not is_active(old, at) or old.replaced_by is not None:
        raise KeyInactive(key_id)
    new = await issue_key(session, box, merchant_id=merchant_id, kind=old.kind, actor=actor)
    ends = at + grace
    old.expires_at = ends if old.expires_at is None else min(old.expires_at, ends)
    old.replaced_by = new.key.id
    audit(
        session,
        merchant_id=merchant_id,
        type_="key.rotated",
        actor=actor,
        detail={"key_id": key_id, "replaced_by": new.key.id, "old_expires_at": ends.isoformat()},
    )
    return new, old


async def resolve_key(
    session: AsyncSession, box: SecretBox, *, key_hash: str
) -> tuple[ApiKey, Merchant, str | None] | None:
    """The key behind a hash, its merchant and its signing secret; None if unknown."""
    row = (
        await session.execute(
            select(ApiKey, Merchant)
            .join(Merchant, Merchant.id == ApiKey.merchant_id)
            .where(ApiKey.key_hash == key_hash)
        )
    ).first()
    if row is None:
        return None
    key, merchant = row
    secret = (
        box.decrypt(key.signing_secret_enc, context=signing_context(key.id))
        if key.signing_secret_enc
        else None
    )
    return key, merchant, secret
