"""One webhook attempt: sign per Standard Webhooks, POST to the checked address, bounded."""

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from payplane_core import egress
from standardwebhooks import Webhook

from workers.notifier.directory import DirectoryError, MerchantDirectory
from workers.notifier.store import AttemptOutcome

USER_AGENT = "payplane-notifier/1"


@dataclass(frozen=True, slots=True)
class Limits:
    """What one attempt may take: its whole duration (DNS, connect, send, answer) is bounded
    by ``deadline_seconds``, shorter than the delivery's lease, so an attempt still running can
    never be claimed and sent again by another notifier."""

    deadline_seconds: float
    max_response_bytes: int
    allowlist: list[egress.Network]


def signed_headers(
    *, secrets: tuple[str, ...], webhook_id: str, body: str, at: datetime
) -> dict[str, str]:
    """``webhook-id`` stays the event id on every attempt; the timestamp is the attempt's.
    One signature per secret, space-separated as Standard Webhooks allows, so a merchant
    verifies with either secret while a rotation's grace lasts."""
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": " ".join(Webhook(s).sign(webhook_id, at, body) for s in secrets),
    }


async def attempt(
    client: httpx.AsyncClient,
    directory: MerchantDirectory,
    *,
    merchant_id: str,
    webhook_id: str,
    body: str,
    limits: Limits,
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
    try:
        # Checked now (DNS may have changed since the URL was set) and connected to as checked.
        async with asyncio.timeout(limits.deadline_seconds):
            pinned = await egress.check_url(target.url, limits.allowlist, must_resolve=True)
            status = await _post(client, pinned, body, webhook_id, target.secrets, limits)
    except egress.UnsafeUrl as exc:
        return outcome(target.url, None, f"refused: {exc}")
    except TimeoutError:
        return outcome(target.url, None, f"timed out after {limits.deadline_seconds:g}s")
    except httpx.HTTPError as exc:
        return outcome(target.url, None, f"{type(exc).__name__}: {exc}"[:500])
    error = None if 200 <= status < 300 else f"HTTP {status}"
    return outcome(target.url, status, error)


async def _post(
    client: httpx.AsyncClient,
    pinned: egress.Pinned,
    body: str,
    webhook_id: str,
    secrets: tuple[str, ...],
    limits: Limits,
) -> int:
    """POST to the checked address (Host and TLS name stay the URL's); read at most
    ``limits.max_response_bytes`` of the answer: only its status matters."""
    headers = signed_headers(
        secrets=secrets, webhook_id=webhook_id, body=body, at=datetime.now(UTC)
    )
    url = httpx.URL(pinned.url)
    headers["host"] = url.netloc.decode("ascii")
    request = client.build_request(
        "POST",
        url.copy_with(host=pinned.address),
        content=body.encode(),
        headers=headers,
        extensions={"sni_hostname": pinned.host},
    )
    response = await client.send(request, stream=True)
    try:
        read = 0
        async for chunk in response.aiter_raw():
            read += len(chunk)
            if read >= limits.max_response_bytes:
                break
    finally:
        await response.aclose()
    return response.status_code
