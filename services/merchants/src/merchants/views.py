"""Rows to API bodies (never a secret)."""

from datetime import datetime

from merchants.models import ApiKey, Merchant
from merchants.records import is_active, now
from merchants.schemas import KeyOut, MerchantOut, Quota, RateLimit


def merchant_out(merchant: Merchant) -> MerchantOut:
    return MerchantOut(
        id=merchant.id,
        name=merchant.name,
        external_ref=merchant.external_ref,
        display_name=merchant.display_name,
        plan=merchant.plan,
        webhook_url=merchant.webhook_url,
        rate_limit=RateLimit(
            requests_per_second=merchant.requests_per_second, burst=merchant.burst
        ),
        quota=Quota(payments_per_month=merchant.payments_per_month),
        allowed_providers=list(merchant.allowed_providers),
        status=merchant.status,
        created_at=merchant.created_at,
        updated_at=merchant.updated_at,
    )


def key_out(key: ApiKey, at: datetime | None = None) -> KeyOut:
    return KeyOut(
        id=key.id,
        merchant_id=key.merchant_id,
        kind=key.kind,  # type: ignore[arg-type]
        prefix=key.prefix,
        scopes=list(key.scopes),
        created_at=key.created_at,
        expires_at=key.expires_at,
        revoked_at=key.revoked_at,
        replaced_by=key.replaced_by,
        active=is_active(key, at or now()),
    )
