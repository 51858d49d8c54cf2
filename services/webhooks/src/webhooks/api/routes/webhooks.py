"""``POST /api/v1/payments/webhook``: provider outcomes, reached through the ingress (the
gateway signs it internally without a merchant; the provider's own signature is checked here)."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from payplane_core.app import Internal
from payplane_core.problems import Problem, problem_response

from webhooks import intake
from webhooks.api.deps import Payments, SecretsDep, Sessions, SettingsDep
from webhooks.provider_secrets import SecretsUnavailable
from webhooks.verify import PROVIDER_HEADER

router = APIRouter(prefix="/api/v1/payments", tags=["provider webhooks"])

_TITLES = {400: "Bad Request", 403: "Forbidden", 409: "Conflict", 503: "Service Unavailable"}


@router.post("/webhook")
async def provider_webhook(
    request: Request,
    identity: Internal,
    settings: SettingsDep,
    sessions: Sessions,
    payments: Payments,
    provider_secrets: SecretsDep,
) -> JSONResponse:
    raw = await request.body()  # the exact bytes that were signed; parsed only once verified
    try:
        secrets = await provider_secrets.get(claimed=request.headers.get(PROVIDER_HEADER))
    except SecretsUnavailable:
        raise Problem(
            503,
            "secrets-unavailable",
            "Provider secrets cannot be read right now.",
            headers={"Retry-After": "5"},
        ) from None
    answer = await intake.receive(
        sessions=sessions,
        secrets=secrets,
        payments=payments,
        raw=raw,
        headers=request.headers,
        request_id=identity.request_id or "",
        tolerance_seconds=settings.WEBHOOK_TOLERANCE_SECONDS,
    )
    if answer.status < 300:
        return JSONResponse(answer.body, status_code=answer.status)
    slug = {"retry-later": "retry-later"}.get(answer.reason or "", f"webhook-{answer.reason}")
    return problem_response(
        Problem(
            answer.status,
            slug,
            answer.body["detail"],
            title=_TITLES.get(answer.status),
            headers=answer.headers,
            reason=answer.reason,
            log_id=answer.body["log_id"],
        )
    )
