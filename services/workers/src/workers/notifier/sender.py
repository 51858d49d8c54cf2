"""One webhook attempt: sign per Standard Webhooks and POST with a timeout."""

import time
from datetime import UTC, datetime

import httpx
from standardwebhooks import Webhook

from workers.notifier.directory import DirectoryError, MerchantDirectory
from workers.notifier.store import AttemptOutcome

USER_AGENT = "payplane-notifier/1"


def signed_headers(*, secret: str, webhook_id: str, body: str, at: datetime) -> dict[str, str]:
    """``webhook-id`` stays the event id on every attempt; the timestamp is the attempt's."""
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(webhook_id, at, body),
    }


async def attempt(
    client: httpx.AsyncClient,
    directory: MerchantDirectory,
    *,
    merchant_id: str,
    webhook_id: str,
    body: str,
    timeout_seconds: float,
) -> AttemptOutcome:
    started_at = datetime.now(UTC)
    clock = time.perf_counter()

    def outcome(url: str | None, status: int | None, error: str | None) -> AttemptOutcome:
        latency = int((time.perf_counter() - clock) * 1000)
        return AttemptOutcome(url, started_at, latency, status, error)

    try:
        target = await directory.target(merchant_id)
    except DirectoryError as exc:
        return outcome(None, None, str(exc))
    if not target.url:
        return outcome(None, None, "the merchant has no webhook URL")
    if not target.url.startswith(("https://", "http://")):
        return outcome(target.url, None, "the webhook URL is not http(s)")
    headers = signed_headers(
        secret=target.secret, webhook_id=webhook_id, body=body, at=datetime.now(UTC)
    )
    try:
        response = await client.post(
            target.url, content=body.encode(), headers=headers, timeout=timeout_seconds
        )
    except httpx.TimeoutException:
        return outcome(target.url, None, f"timed out after {timeout_seconds:g}s")
    except httpx.HTTPError as exc:
        return outcome(target.url, None, f"{type(exc).__name__}: {exc}"[:500])
    error = None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
    return outcome(target.url, response.status_code, error)
