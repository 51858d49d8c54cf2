"""What the merchants and keys modules share: the clock, the audit trail, secret contexts,
and finding a live merchant (optionally locked for the transaction)."""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from merchants.models import ApiKey, Merchant, MerchantEvent


class MerchantNotFound(Exception):
    pass


def now() -> datetime:
    return datetime.now(UTC)


def webhook_context(merchant_id: str) -> str:
    return f"merchant:{merchant_id}:webhook_secret"


def signing_context(key_id: str) -> str:
    return f"key:{key_id}:signing_secret"


def is_active(key: ApiKey, at: datetime) -> bool:
    return key.revoked_at is None and (key.expires_at is None or key.expires_at > at)


def audit(
    session: AsyncSession, *, merchant_id: str, type_: str, actor: str, detail: dict[str, Any]
) -> None:
    session.add(MerchantEvent(merchant_id=merchant_id, type=type_, actor=actor, detail=detail))


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
