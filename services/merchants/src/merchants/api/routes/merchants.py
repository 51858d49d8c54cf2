"""Internal merchants API (platform callers only: the CLI, the operator, the notifier)."""

from fastapi import APIRouter, Response
from payplane_core import egress
from payplane_core.problems import Problem
from payplane_core.usage import current_period, quota_counter_key

from merchants import service
from merchants.api.deps import AdminCaller, Box, RedisDep, Sessions, SettingsDep, UseCases
from merchants.schemas import (
    Credentials,
    CredentialsRotate,
    MerchantCreate,
    MerchantCreated,
    MerchantOut,
    MerchantUpdate,
    Usage,
    WebhookTarget,
)
from merchants.views import merchant_out

router = APIRouter(prefix="/internal/v1/merchants", tags=["merchants"])


def not_found(merchant: str) -> Problem:
    return Problem(404, "merchant-not-found", f"No merchant {merchant}.")


async def refuse_unsafe_webhook_url(url: object, settings: SettingsDep) -> None:
    """Only public addresses (or the local allowlist): the notifier POSTs there (SSRF)."""
    if url is None:
        return
    allowlist = egress.parse_allowlist(settings.WEBHOOK_URL_ALLOWLIST)
    try:
        await egress.check_url(str(url), allowlist, must_resolve=False)
    except egress.UnsafeUrl as exc:
        detail = f"The webhook URL is refused: {exc}."
        raise Problem(422, "webhook-url-not-allowed", detail) from None


@router.post("", status_code=201, response_model=MerchantCreated)
async def create_merchant(
    body: MerchantCreate,
    caller: AdminCaller,
    sessions: Sessions,
    box: Box,
    response: Response,
    settings: SettingsDep,
) -> MerchantCreated:
    """201 with credentials; 200 without them when ``external_ref`` names an existing one."""
    await refuse_unsafe_webhook_url(body.webhook_url, settings)
    try:
        async with sessions.begin() as session:
            merchant, credentials = await service.create_merchant(
                session, box, data=body, actor=caller
            )
            out = merchant_out(merchant)
    except service.MerchantExists:
        raise Problem(
            409, "merchant-exists", f"A merchant named {body.name} already exists."
        ) from None
    if credentials is None:
        response.status_code = 200
    return MerchantCreated(merchant=out, credentials=credentials)


@router.get("/by-name/{name}", response_model=MerchantOut)
async def get_merchant_by_name(name: str, _: AdminCaller, sessions: Sessions) -> MerchantOut:
    async with sessions() as session:
        try:
            return merchant_out(await service.get_merchant_by_name(session, name=name))
        except service.MerchantNotFound:
            raise not_found(name) from None


@router.get("/{merchant_id}", response_model=MerchantOut)
async def get_merchant(merchant_id: str, _: AdminCaller, sessions: Sessions) -> MerchantOut:
    async with sessions() as session:
        try:
            return merchant_out(await service.get_merchant(session, merchant_id=merchant_id))
        except service.MerchantNotFound:
            raise not_found(merchant_id) from None


@router.patch("/{merchant_id}", response_model=MerchantOut)
async def update_merchant(
    merchant_id: str,
    body: MerchantUpdate,
    caller: AdminCaller,
    merchants: UseCases,
    settings: SettingsDep,
) -> MerchantOut:
    await refuse_unsafe_webhook_url(body.webhook_url, settings)
    try:
        return await merchants.update(merchant_id=merchant_id, data=body, actor=caller)
    except service.MerchantNotFound:
        raise not_found(merchant_id) from None


@router.delete("/{merchant_id}", status_code=204)
async def delete_merchant(merchant_id: str, caller: AdminCaller, merchants: UseCases) -> None:
    try:
        await merchants.delete(merchant_id=merchant_id, actor=caller)
    except service.MerchantNotFound:
        raise not_found(merchant_id) from None


@router.get("/{merchant_id}/webhook", response_model=WebhookTarget)
async def get_webhook(
    merchant_id: str, _: AdminCaller, sessions: Sessions, box: Box
) -> WebhookTarget:
    """Where and how to sign a merchant's webhooks (the notifier calls this)."""
    async with sessions() as session:
        try:
            merchant, secrets = await service.webhook_target(session, box, merchant_id=merchant_id)
        except service.MerchantNotFound:
            raise not_found(merchant_id) from None
    return WebhookTarget(
        merchant_id=merchant.id,
        webhook_url=merchant.webhook_url,
        webhook_secret=secrets[0],
        previous_webhook_secret=secrets[1] if len(secrets) > 1 else None,
    )


@router.post("/{merchant_id}/credentials/rotate", response_model=Credentials)
async def rotate_credentials(
    merchant_id: str,
    body: CredentialsRotate,
    caller: AdminCaller,
    merchants: UseCases,
) -> Credentials:
    try:
        return await merchants.rotate(
            merchant_id=merchant_id, grace_seconds=body.grace_seconds, actor=caller
        )
    except service.MerchantNotFound:
        raise not_found(merchant_id) from None


@router.get("/{merchant_id}/usage", response_model=Usage)
async def get_usage(merchant_id: str, _: AdminCaller, sessions: Sessions, redis: RedisDep) -> Usage:
    """This month's payments as counted by the gateway (the Redis counter is the live one)."""
    async with sessions() as session:
        try:
            merchant = await service.get_merchant(session, merchant_id=merchant_id)
        except service.MerchantNotFound:
            raise not_found(merchant_id) from None
    period = current_period()
    try:
        used = int(await redis.get(quota_counter_key(merchant_id, period)) or 0)
    except Exception:  # noqa: BLE001 - an unreachable counter is a 503, not a 500
        raise Problem(
            503,
            "usage-unavailable",
            "Usage counters are unreachable; retry later.",
            headers={"Retry-After": "1"},
        ) from None
    return Usage(
        merchant_id=merchant_id,
        period=period,
        payments=used,
        payments_per_month=merchant.payments_per_month,
        remaining=max(0, merchant.payments_per_month - used),
    )
