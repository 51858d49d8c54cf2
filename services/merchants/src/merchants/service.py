"""Merchants and keys: plain keyword-only functions shared by the API, the CLI and the operator.

Functions take the caller's session and never commit: the caller's transaction makes a
merchant, its keys and its audit rows appear together or not at all. Secrets come back in clear
exactly once (in the returned values) and are stored only hashed or encrypted.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from payplane_core.apikeys import hash_key
from payplane_core.crypto import SecretBox
from payplane_core.ids import new_id
from payplane_core.internal_auth import SCOPE_PAYMENTS_READ, SCOPE_PAYMENTS_WRITE
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from merchants import keygen
from merchants.models import ApiKey, Merchant, MerchantEvent
from merchants.schemas import Credentials, MerchantCreate, MerchantUpdate

SCOPES_BY_KIND = {
    "api": [SCOPE_PAYMENTS_READ, SCOPE_PAYMENTS_WRITE],
    "read": [SCOPE_PAYMENTS_READ],
}


class MerchantExists(Exception):
    pass


class MerchantNotFound(Exception):
    pass


class KeyNotFound(Exception):
    pass


class KeyInactive(Exception):
    """The key is revoked, expired or already rotated: it cannot be rotated again."""


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    secret_key: str  # the full key, shown once
    signing_secret: str | None  # api keys only, shown once


def now() -> datetime:
    return datetime.now(UTC)


def webhook_context(merchant_id: str) -> str:
    return f"merchant:{merchant_id}:webhook_secret"


def signing_context(key_id: str) -> str:
    return f"key:{key_id}:signing_secret"


def is_active(key: ApiKey, at: datetime) -> bool:
    return key.revoked_at is None and (key.expires_at is None or key.expires_at > at)


def _audit(
    session: AsyncSession, *, merchant_id: str, type_: str, actor: str, detail: dict[str, Any]
) -> None:
    session.add(MerchantEvent(merchant_id=merchant_id, type=type_, actor=actor, detail=detail))


async def create_merchant(
    session: AsyncSession, box: SecretBox, *, data: MerchantCreate, actor: str
) -> tuple[Merchant, Credentials | None]:
    """Create a merchant with its first keys; credentials come back once, here.

    With ``data.external_ref``, creating again returns the merchant made first for that
    reference and no credentials (they were shown once; rotate to issue new ones): a caller
    that died between the create and storing its answer retries without making a second one.
    Raises MerchantExists when another live merchant has the name (unique index, race-free).
    """
    at = now()
    merchant_id = new_id("mer")
    webhook_secret = keygen.new_webhook_secret()
    inserted = await session.scalar(
        insert(Merchant)
        .values(
            id=merchant_id,
            name=data.name,
            external_ref=data.external_ref,
            display_name=data.display_name or data.name,
            plan=data.plan,
            webhook_url=str(data.webhook_url) if data.webhook_url else None,
            requests_per_second=data.rate_limit.requests_per_second,
            burst=data.rate_limit.burst,
            payments_per_month=data.quota.payments_per_month,
            allowed_providers=data.allowed_providers,
            status="active",
            webhook_secret_enc=box.encrypt(webhook_secret, context=webhook_context(merchant_id)),
            created_at=at,
            updated_at=at,
        )
        .on_conflict_do_nothing()  # a live name or a known external reference
        .returning(Merchant.id)
    )
    if inserted is None:
        if data.external_ref is not None:
            existing = await session.scalar(
                select(Merchant).where(Merchant.external_ref == data.external_ref)
            )
            if existing is not None:
                return existing, None
        raise MerchantExists(data.name)
    merchant = await session.get(Merchant, merchant_id)
    assert merchant is not None
    _audit(
        session,
        merchant_id=merchant_id,
        type_="merchant.created",
        actor=actor,
        detail={"name": data.name, "plan": data.plan, "external_ref": data.external_ref},
    )
    api = await issue_key(session, box, merchant_id=merchant_id, kind="api", actor=actor)
    read = await issue_key(session, box, merchant_id=merchant_id, kind="read", actor=actor)
    return merchant, _credentials(merchant_id, api, read, webhook_secret)


def _credentials(merchant_id: str, api: IssuedKey, read: IssuedKey, webhook: str) -> Credentials:
    assert api.signing_secret is not None
    return Credentials(
        merchant_id=merchant_id,
        api_key=api.secret_key,
        api_key_id=api.key.id,
        read_key=read.secret_key,
        read_key_id=read.key.id,
        signing_secret=api.signing_secret,
        webhook_secret=webhook,
    )


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
    _audit(
        session,
        merchant_id=merchant_id,
        type_="key.created",
        actor=actor,
        detail={"key_id": key_id, "kind": kind, "prefix": key.prefix},
    )
    return IssuedKey(key=key, secret_key=secret_key, signing_secret=signing_secret)


async def get_merchant(
    session: AsyncSession, *, merchant_id: str, for_update: bool = False
) -> Merchant:
    query = select(Merchant).where(Merchant.id == merchant_id, Merchant.status != "deleted")
    merchant = await session.scalar(query.with_for_update() if for_update else query)
    if merchant is None:
        raise MerchantNotFound(merchant_id)
    return merchant


async def get_merchant_by_name(session: AsyncSession, *, name: str) -> Merchant:
    merchant = await session.scalar(
        select(Merchant).where(Merchant.name == name, Merchant.status != "deleted")
    )
    if merchant is None:
        raise MerchantNotFound(name)
    return merchant


async def update_merchant(
    session: AsyncSession, *, merchant_id: str, data: MerchantUpdate, actor: str
) -> tuple[Merchant, list[str]]:
    """Apply the given fields; returns the merchant and the hashes of its keys (to uncache)."""
    merchant = await get_merchant(session, merchant_id=merchant_id, for_update=True)
    changed: dict[str, Any] = {}
    fields = data.model_dump(exclude_unset=True, mode="json")
    if "rate_limit" in fields and data.rate_limit is not None:
        changed["requests_per_second"] = data.rate_limit.requests_per_second
        changed["burst"] = data.rate_limit.burst
    if "quota" in fields and data.quota is not None:
        changed["payments_per_month"] = data.quota.payments_per_month
    for name in ("display_name", "plan", "webhook_url", "allowed_providers"):
        if name in fields and fields[name] is not None:
            changed[name] = fields[name]
    for name, value in changed.items():
        setattr(merchant, name, value)
    if changed:
        merchant.updated_at = now()
        _audit(
            session,
            merchant_id=merchant_id,
            type_="merchant.updated",
            actor=actor,
            detail={"fields": sorted(changed)},
        )
    return merchant, await key_hashes(session, merchant_id=merchant_id)


async def key_hashes(session: AsyncSession, *, merchant_id: str) -> list[str]:
    return list(
        await session.scalars(select(ApiKey.key_hash).where(ApiKey.merchant_id == merchant_id))
    )


async def delete_merchant(session: AsyncSession, *, merchant_id: str, actor: str) -> list[str]:
    """Mark deleted and revoke every key; returns the key hashes to drop from the cache."""
    merchant = await get_merchant(session, merchant_id=merchant_id, for_update=True)
    at = now()
    merchant.status = "deleted"
    merchant.updated_at = at
    for key in await list_keys(session, merchant_id=merchant_id):
        if key.revoked_at is None:
            key.revoked_at = at
    _audit(session, merchant_id=merchant_id, type_="merchant.deleted", actor=actor, detail={})
    return await key_hashes(session, merchant_id=merchant_id)


async def webhook_target(
    session: AsyncSession, box: SecretBox, *, merchant_id: str
) -> tuple[Merchant, str]:
    merchant = await get_merchant(session, merchant_id=merchant_id)
    return merchant, box.decrypt(merchant.webhook_secret_enc, context=webhook_context(merchant.id))


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
        _audit(
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
    _audit(
        session,
        merchant_id=merchant_id,
        type_="key.rotated",
        actor=actor,
        detail={"key_id": key_id, "replaced_by": new.key.id, "old_expires_at": ends.isoformat()},
    )
    return new, old


async def rotate_credentials(
    session: AsyncSession, box: SecretBox, *, merchant_id: str, grace: timedelta, actor: str
) -> tuple[Credentials, list[ApiKey]]:
    """Rotate the current API key and read key together, and the webhook secret.

    Old keys keep working for ``grace``; webhooks are signed with the new secret from now on.
    """
    merchant = await get_merchant(session, merchant_id=merchant_id, for_update=True)
    webhook_secret = keygen.new_webhook_secret()
    merchant.webhook_secret_enc = box.encrypt(webhook_secret, context=webhook_context(merchant.id))
    merchant.updated_at = at = now()
    _audit(session, merchant_id=merchant.id, type_="webhook_secret.rotated", actor=actor, detail={})
    current = {
        key.kind: key
        for key in await list_keys(session, merchant_id=merchant_id)
        if is_active(key, at) and key.replaced_by is None
    }
    issued: dict[str, IssuedKey] = {}
    old_keys = []
    for kind in ("api", "read"):
        if kind in current:
            new, old = await rotate_key(
                session,
                box,
                merchant_id=merchant_id,
                key_id=current[kind].id,
                grace=grace,
                actor=actor,
            )
            old_keys.append(old)
        else:  # every key of this kind was revoked: just issue a fresh one
            new = await issue_key(session, box, merchant_id=merchant_id, kind=kind, actor=actor)
        issued[kind] = new
    return _credentials(merchant.id, issued["api"], issued["read"], webhook_secret), old_keys


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


async def reencrypt_secrets(session: AsyncSession, box: SecretBox) -> int:
    """After prepending a new ENCRYPTION_KEYS entry: re-encrypt what the old keys sealed."""
    count = 0
    for merchant in await session.scalars(select(Merchant).with_for_update()):
        if box.needs_rotation(merchant.webhook_secret_enc):
            merchant.webhook_secret_enc = box.reencrypt(
                merchant.webhook_secret_enc, context=webhook_context(merchant.id)
            )
            count += 1
    keys = await session.scalars(
        select(ApiKey).where(ApiKey.signing_secret_enc.is_not(None)).with_for_update()
    )
    for key in keys:
        assert key.signing_secret_enc is not None
        if box.needs_rotation(key.signing_secret_enc):
            key.signing_secret_enc = box.reencrypt(
                key.signing_secret_enc, context=signing_context(key.id)
            )
            count += 1
    return count
