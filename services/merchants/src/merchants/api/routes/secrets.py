"""``POST /internal/v1/secrets/reencrypt``: after a new ENCRYPTION_KEYS entry is prepended,
re-encrypt the webhook and signing secrets the older keys sealed (``payplane secrets
reencrypt``)."""

from fastapi import APIRouter

from merchants import service
from merchants.api.deps import AdminCaller, Box, Sessions

router = APIRouter(prefix="/internal/v1/secrets", tags=["secrets"])


@router.post("/reencrypt")
async def reencrypt(_: AdminCaller, sessions: Sessions, box: Box) -> dict[str, int]:
    async with sessions.begin() as session:
        return {"reencrypted": await service.reencrypt_secrets(session, box)}
