"""Outcome callbacks to the platform, signed per Standard Webhooks and retried until 2xx."""

import asyncio
import logging
from datetime import UTC, datetime

import httpx
from payplane_core.strictjson import compact
from standardwebhooks import Webhook

from simulator import retry
from simulator.core.config import Settings
from simulator.ledger import Charge, ChargeStatus, Delivery, Ledger
from simulator.rules import FAILURE_REASONS, Outcome

log = logging.getLogger(__name__)


def outcome_event(charge: Charge) -> dict:
    return {
        "type": f"charge.{charge.status}",
        "timestamp": datetime.now(UTC).isoformat(),
        "data": {
            "id": charge.id,
            "payment_id": charge.payment_id,
            "status": charge.status.value,
            "amount": charge.amount,
            "currency": charge.currency,
            "provider": charge.provider,
            "failure_reason": charge.failure_reason,
        },
    }


def webhook_id(charge: Charge) -> str:
    # Stable per charge and outcome: every redelivery of this outcome carries the same id.
    return f"msg_{charge.id}_{charge.status}"


def signed_request(
    *, secret: str, provider: str, msg_id: str, body: str, at: datetime | None = None
) -> dict[str, str]:
    """Headers of one delivery attempt; each attempt is signed afresh with its own timestamp."""
    at = at or datetime.now(UTC)
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body),
        # Not part of the Standard Webhooks headers: tells the platform whose secret to use.
        "webhook-provider": provider,
    }


async def deliver(
    *, settings: Settings, ledger: Ledger, http: httpx.AsyncClient, charge: Charge
) -> bool:
    """Send the charge's outcome until the platform answers 2xx or the retry period ends
    (simulator.retry). Switched off callbacks (``PUT /v1/control``) stop it: the outcome then
    only shows in the charge-status API, as when a real provider's callbacks get lost."""
    event = outcome_event(charge)
    msg_id = webhook_id(charge)
    body = compact(event)
    loop = asyncio.get_running_loop()
    give_up_at = loop.time() + settings.SIM_CALLBACK_GIVE_UP_SECONDS
    attempt = 0
    while ledger.control.callbacks_enabled:
        attempt += 1
        status, error, retry_after = await _send(settings, http, msg_id, body)
        ledger.deliveries.append(
            Delivery(
                msg_id,
                charge.payment_id,
                event["type"],
                attempt,
                status,
                error,
                datetime.now(UTC).isoformat(),
            )
        )
        if status is not None and 200 <= status < 300:
            return True
        delay = retry.backoff_delay(
            attempt,
            base=settings.SIM_CALLBACK_BACKOFF_BASE_SECONDS,
            cap=settings.SIM_CALLBACK_BACKOFF_MAX_SECONDS,
            retry_after=retry_after,
        )
        log.warning(
            "callback not accepted",
            extra={
                "webhook_id": msg_id,
                "attempt": attempt,
                "status": status,
                "error": error,
                "retry_in_seconds": round(delay, 2),
            },
        )
        if loop.time() + delay > give_up_at:
            log.error("callback abandoned", extra={"webhook_id": msg_id, "attempts": attempt})
            return False
        await asyncio.sleep(delay)
    return False


async def _send(
    settings: Settings, http: httpx.AsyncClient, msg_id: str, body: str
) -> tuple[int | None, str | None, float | None]:
    """One signed attempt: (status, error, Retry-After seconds)."""
    headers = signed_request(
        secret=settings.SIM_WEBHOOK_SECRET,
        provider=settings.provider_name,
        msg_id=msg_id,
        body=body,
    )
    try:
        response = await http.post(
            settings.SIM_WEBHOOK_URL,
            content=body,
            headers=headers,
            timeout=settings.SIM_CALLBACK_TIMEOUT_SECONDS,
        )
    except httpx.HTTPError as exc:
        return None, type(exc).__name__, None
    return (
        response.status_code,
        None,
        retry.retry_after_seconds(response.headers.get("retry-after")),
    )


async def settle_and_notify(
    *, settings: Settings, ledger: Ledger, http: httpx.AsyncClient, charge: Charge
) -> None:
    """Decide the accepted charge's outcome per its rule, then call the platform back."""
    if charge.outcome is Outcome.FAIL_AFTER_DELAY:
        await asyncio.sleep(settings.SIM_FAIL_DELAY_MS / 1000)
    else:
        await asyncio.sleep(settings.SIM_CALLBACK_DELAY_MS / 1000)
    async with ledger.locks[charge.payment_id]:
        if charge.outcome is Outcome.SUCCEED:
            charge.status = ChargeStatus.SUCCEEDED
        else:
            charge.status = ChargeStatus.FAILED
            charge.failure_reason = FAILURE_REASONS[charge.outcome]
    await deliver(settings=settings, ledger=ledger, http=http, charge=charge)
