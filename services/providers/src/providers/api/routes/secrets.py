"""``POST /internal/v1/secrets/reencrypt``: after a new ENCRYPTION_KEYS entry is prepended,
re-encrypt the provider secrets the older keys sealed (``payplane secrets reencrypt``)."""

from fastapi import APIRouter

from providers import registry
from providers.api.deps import Caller, Flow, Sessions

router = APIRouter(prefix="/internal/v1/secrets", tags=["secrets"])


@router.post("/reencrypt")
async def reencrypt(_: Caller, sessions: Sessions, flow: Flow) -> dict[str, int]:
    async with sessions.begin() as session:
        return {"reencrypted": await registry.reencrypt_secrets(session, flow.box)}
