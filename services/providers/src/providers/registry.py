"""The provider registry, as plain keyword-only functions: the internal API, the ``payplane``
command and (later) the operator all register providers through ``register_provider``."""

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime

from payplane_core.crypto import SecretBox
from payplane_core.db import autocommit
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from providers.models import Provider


class InvalidProvider(ValueError):
    pass


@dataclass(frozen=True)
class ProviderSecrets:
    api_key: str
    webhook_secret: str


def _context(name: str, field: str) -> str:
    return f"provider:{name}:{field}"


def check_webhook_secret(secret: str) -> None:
    """A Standard Webhooks secret: ``whsec_`` then base64 of at least 16 bytes."""
    if not secret.startswith("whsec_"):
        raise InvalidProvider("webhook_secret must start with whsec_")
    try:
        raw = base64.b64decode(secret.removeprefix("whsec_") + "==", validate=False)
    except (binascii.Error, ValueError):
        raise InvalidProvider("webhook_secret is not base64 after whsec_") from None
    if len(raw) < 16:
        raise InvalidProvider("webhook_secret must carry at least 16 bytes")


async def register_provider(
    session: AsyncSession,
    *,
    box: SecretBox,
    name: str,
    endpoint: str,
    api_key: str,
    webhook_secret: str,
    display_name: str | None = None,
    priority: int = 100,
    weight: int = 1,
    currencies: list[str] | None = None,
    timeout_ms: int = 2000,
    failure_threshold: int = 5,
    open_seconds: int = 30,
    enabled: bool = True,
) -> tuple[Provider, bool]:
    """Create or replace a provider (idempotent). Returns it and whether it was new."""
    check_webhook_secret(webhook_secret)
    at = datetime.now(UTC)
    values = dict(
        display_name=display_name or name,
        endpoint=endpoint.rstrip("/"),
        api_key_encrypted=box.encrypt(api_key, context=_context(name, "api_key")),
        webhook_secret_encrypted=box.encrypt(webhook_secret, context=_context(name, "webhook")),
        priority=priority,
        weight=weight,
        currencies=sorted(set(currencies or [])),
        timeout_ms=timeout_ms,
        failure_threshold=failure_threshold,
        open_seconds=open_seconds,
        enabled=enabled,
        updated_at=at,
    )
    statement = (
        insert(Provider)
        .values(name=name, created_at=at, **values)
        .on_conflict_do_update(index_elements=[Provider.name], set_=values)
        # created_at keeps its first value on update: tells insert from update in one round trip.
        .returning(Provider, Provider.__table__.c.created_at == at)
    )
    row = (await session.execute(statement)).one()
    return row[0], bool(row[1])


async def list_providers(session: AsyncSession, *, enabled_only: bool = False) -> list[Provider]:
    query = select(Provider).order_by(Provider.priority, Provider.name)
    if enabled_only:
        query = query.where(Provider.enabled)
    return list(await session.scalars(query))


# The registry's contents in one value: any change to any column of any provider (through this
# module, the API, the operator or plain SQL) changes it. Cheap for a table of a few rows.
DIGEST_SQL = "(SELECT md5(string_agg(p::text, ',' ORDER BY p.name)) FROM providers AS p)"
_WITH_DIGEST = text(
    f"SELECT {DIGEST_SQL} AS digest, p.* FROM (SELECT 1) AS one"  # noqa: S608 - constant
    " LEFT JOIN providers AS p ON true ORDER BY p.priority, p.name"
)


class ProviderCache:
    """The providers as last read, per process, reused while the registry's digest (read by the
    caller in a statement it makes anyway) is the one they were read with. A change made on
    any replica, or in the database directly, reaches the next payment whose read starts after
    its commit, as an uncached read would: the digest is the database's, not a notification."""

    def __init__(self) -> None:
        self._digest: str | None = None
        self._providers: dict[str, Provider] = {}

    def last_read(self) -> dict[str, Provider]:
        """As last read, unchecked: only to guess ahead (which breakers to read with the lock)."""
        return self._providers

    async def get(self, engine: AsyncEngine, digest: str | None) -> dict[str, Provider]:
        """By name. ``digest``: the registry's ``DIGEST_SQL`` as the caller just read it."""
        if digest is None or digest != self._digest:
            async with autocommit(engine) as conn:
                rows = (await conn.execute(_WITH_DIGEST)).all()
            # Read and digest of one snapshot: a change racing this read shows as a new digest.
            self._providers = {
                row.name: Provider(**{k: v for k, v in row._mapping.items() if k != "digest"})
                for row in rows
                if row.name is not None  # no providers: one row, the digest's
            }
            self._digest = rows[0].digest
        return self._providers


async def get_provider(session: AsyncSession, *, name: str) -> Provider | None:
    return await session.get(Provider, name)


# Sealed columns of a provider, with the field name in their encryption context.
_SEALED = (("api_key_encrypted", "api_key"), ("webhook_secret_encrypted", "webhook"))


async def reencrypt_secrets(session: AsyncSession, box: SecretBox) -> int:
    """After prepending a new ENCRYPTION_KEYS entry: re-encrypt what the old keys sealed."""
    count = 0
    for provider in await session.scalars(select(Provider).with_for_update()):
        for column, field in _SEALED:
            sealed = getattr(provider, column)
            if box.needs_rotation(sealed):
                context = _context(provider.name, field)
                setattr(provider, column, box.reencrypt(sealed, context=context))
                count += 1
    return count


async def set_enabled(session: AsyncSession, *, name: str, enabled: bool) -> Provider | None:
    provider = await session.get(Provider, name, with_for_update=True)
    if provider is not None:
        provider.enabled = enabled
        provider.updated_at = datetime.now(UTC)
    return provider


def secrets_of(provider: Provider, *, box: SecretBox) -> ProviderSecrets:
    return ProviderSecrets(
        api_key=box.decrypt(provider.api_key_encrypted, context=_context(provider.name, "api_key")),
        webhook_secret=box.decrypt(
            provider.webhook_secret_encrypted, context=_context(provider.name, "webhook")
        ),
    )
