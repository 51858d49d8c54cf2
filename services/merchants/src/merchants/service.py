"""The merchant use cases, shared by the API, the CLI and the operator (through the API).

Two layers. Session-level functions take the caller's session and never commit: a merchant,
its keys and its audit rows appear together or not at all. The use cases (``Merchants``) own
the transaction and what must follow a commit: dropping the gateway's cached copies of the
keys whose limits, expiry or status changed, and deciding the rotation grace. Secrets come back
in clear exactly once (in the returned values) and are stored only hashed or encrypted.
"""

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from payplane_core import merchant_version
from payplane_core.apikeys import key_cache_key
from payplane_core.crypto import SecretBox
from payplane_core.ids import new_id
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from merchants import keygen
from merchants.keys import (
    IssuedKey,
    KeyInactive,
    KeyNotFound,
    is_active,
    issue_key,
    key_hashes,
    list_keys,
    resolve_key,
    revoke_key,
    rotate_key,
)
from merchants.models import ApiKey, Merchant
from merchants.records import (
    MerchantNotFound,
    audit,
    get_merchant,
    get_merchant_by_name,
    now,
    signing_context,
    webhook_context,
)
from merchants.schemas import Credentials, MerchantCreate, MerchantOut, MerchantUpdate
from merchants.views import merchant_out

__all__ = [
    "IssuedKey",
    "KeyInactive",
    "KeyNotFound",
    "MerchantExists",
    "MerchantNotFound",
    "Merchants",
    "create_merchant",
    "get_merchant",
    "get_merchant_by_name",
    "issue_key",
    "list_keys",
    "now",
    "resolve_key",
    "webhook_target",
]
log = logging.getLogger(__name__)


class MerchantExists(Exception):
    pass


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
    audit(
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
        audit(
            session,
            merchant_id=merchant_id,
            type_="merchant.updated",
            actor=actor,
            detail={"fields": sorted(changed)},
        )
    return merchant, await key_hashes(session, merchant_id=merchant_id)


async def delete_merchant(session: AsyncSession, *, merchant_id: str, actor: str) -> list[str]:
    """Mark deleted and revoke every key; returns the key hashes to drop from the cache."""
    merchant = await get_merchant(session, merchant_id=merchant_id, for_update=True)
    at = now()
    merchant.status = "deleted"
    merchant.updated_at = at
    for key in await list_keys(session, merchant_id=merchant_id):
        if key.revoked_at is None:
            key.revoked_at = at
    audit(session, merchant_id=merchant_id, type_="merchant.deleted", actor=actor, detail={})
    return await key_hashes(session, merchant_id=merchant_id)


async def webhook_target(
    session: AsyncSession, box: SecretBox, *, merchant_id: str
) -> tuple[Merchant, list[str]]:
    """The merchant and the secrets its webhooks are signed with: the current one, then the
    one a rotation replaced while its grace lasts."""
    merchant = await get_merchant(session, merchant_id=merchant_id)
    context = webhook_context(merchant.id)
    secrets = [box.decrypt(merchant.webhook_secret_enc, context=context)]
    until = merchant.previous_webhook_secret_until
    if merchant.previous_webhook_secret_enc is not None and until is not None and until > now():
        secrets.append(box.decrypt(merchant.previous_webhook_secret_enc, context=context))
    return merchant, secrets


async def rotate_credentials(
    session: AsyncSession, box: SecretBox, *, merchant_id: str, grace: timedelta, actor: str
) -> tuple[Credentials, list[ApiKey]]:
    """Rotate the current API key and read key together, and the webhook secret.

    Old keys keep working for ``grace``; webhooks are signed with the new secret from now on,
    and with the old one as well until ``grace`` ends.
    """
    merchant = await get_merchant(session, merchant_id=merchant_id, for_update=True)
    webhook_secret = keygen.new_webhook_secret()
    merchant.updated_at = at = now()
    merchant.previous_webhook_secret_enc = merchant.webhook_secret_enc
    merchant.previous_webhook_secret_until = at + grace
    merchant.webhook_secret_enc = box.encrypt(webhook_secret, context=webhook_context(merchant.id))
    audit(session, merchant_id=merchant.id, type_="webhook_secret.rotated", actor=actor, detail={})
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


async def reencrypt_secrets(session: AsyncSession, box: SecretBox) -> int:
    """After prepending a new ENCRYPTION_KEYS entry: re-encrypt what the old keys sealed."""
    count = 0
    for merchant in await session.scalars(select(Merchant).with_for_update()):
        context = webhook_context(merchant.id)
        for column in ("webhook_secret_enc", "previous_webhook_secret_enc"):
            sealed = getattr(merchant, column)
            if sealed is not None and box.needs_rotation(sealed):
                setattr(merchant, column, box.reencrypt(sealed, context=context))
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


async def drop_cached_keys(redis: Redis, hashes: Iterable[str]) -> None:
    """After a commit that revoked or changed keys: the gateway must re-read them.

    If Redis is down the change still holds; the gateway's cache TTL bounds the delay.
    """
    names = [key_cache_key(h) for h in hashes]
    if not names:
        return
    try:
        await redis.delete(*names)
    except Exception as exc:  # noqa: BLE001 - the database change is what matters
        log.warning("could not drop cached keys", extra={"count": len(names), "error": repr(exc)})


@dataclass(frozen=True)
class Merchants:
    """The use cases: each one transaction, then the gateway's cache brought in step."""

    sessions: async_sessionmaker
    box: SecretBox
    redis: Redis
    default_grace: timedelta  # how long a rotated key keeps working unless the caller says

    def grace(self, seconds: int | None) -> timedelta:
        return self.default_grace if seconds is None else timedelta(seconds=seconds)

    async def update(self, *, merchant_id: str, data: MerchantUpdate, actor: str) -> MerchantOut:
        """New limits, plan, URL or providers reach the gateway now, not at cache expiry."""
        async with self.sessions.begin() as session:
            merchant, hashes = await update_merchant(
                session, merchant_id=merchant_id, data=data, actor=actor
            )
            out = merchant_out(merchant)
        await drop_cached_keys(self.redis, hashes)
        await merchant_version.bump(self.redis, merchant_id)  # e.g. its allowed providers
        return out

    async def delete(self, *, merchant_id: str, actor: str) -> None:
        async with self.sessions.begin() as session:
            hashes = await delete_merchant(session, merchant_id=merchant_id, actor=actor)
        await drop_cached_keys(self.redis, hashes)
        await merchant_version.bump(self.redis, merchant_id)

    async def rotate(
        self, *, merchant_id: str, grace_seconds: int | None, actor: str
    ) -> Credentials:
        async with self.sessions.begin() as session:
            credentials, old_keys = await rotate_credentials(
                session,
                self.box,
                merchant_id=merchant_id,
                grace=self.grace(grace_seconds),
                actor=actor,
            )
        await drop_cached_keys(self.redis, [k.key_hash for k in old_keys])  # their new expiry
        await merchant_version.bump(self.redis, merchant_id)  # its new webhook secret
        return credentials

    async def rotate_key(
        self, *, merchant_id: str, key_id: str, grace_seconds: int | None, actor: str
    ) -> tuple[IssuedKey, ApiKey]:
        async with self.sessions.begin() as session:
            new, old = await rotate_key(
                session,
                self.box,
                merchant_id=merchant_id,
                key_id=key_id,
                grace=self.grace(grace_seconds),
                actor=actor,
            )
        await drop_cached_keys(self.redis, [old.key_hash])  # its new expiry must reach the gateway
        return new, old

    async def revoke_key(self, *, merchant_id: str, key_id: str, actor: str) -> ApiKey:
        async with self.sessions.begin() as session:
            key = await revoke_key(session, merchant_id=merchant_id, key_id=key_id, actor=actor)
        await drop_cached_keys(self.redis, [key.key_hash])
        return key
