"""One webhook attempt: sign per Standard Webhooks, POST to the checked address, bounded.

The POST goes out on aiohttp's own API (a ``payplane_core.http.pool``), not through httpx's
client: three of a payment's seven outgoing requests are its webhooks, and httpx's request and
response models cost about 200 µs of CPU per request over aiohttp alone
(``python -m benchmarks client``). Failures keep httpx's names (``ConnectError`` …) in the
attempt's error, as before.
"""

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp
import yarl
from payplane_core import egress, http, telemetry
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
    session: aiohttp.ClientSession,
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
            status = await _post(session, pinned, body, webhook_id, target.secrets, limits)
    except egress.UnsafeUrl as exc:
        return outcome(target.url, None, f"refused: {exc}")
    except TimeoutError:
        return outcome(target.url, None, f"timed out after {limits.deadline_seconds:g}s")
    except aiohttp.ClientError as exc:
        return outcome(target.url, None, describe(exc))
    error = None if 200 <= status < 300 else f"HTTP {status}"
    return outcome(target.url, status, error)


async def _post(
    session: aiohttp.ClientSession,
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
    headers.update(telemetry.client_headers())  # the merchant's side joins the payment's trace
    url = yarl.URL(pinned.url)
    headers["host"] = url.host_port_subcomponent  # the port only if not the default
    async with session.post(
        url.with_host(pinned.address),
        data=body.encode(),
        headers=headers,
        allow_redirects=False,
        server_hostname=pinned.host,
    ) as response:
        read = 0
        async for chunk in response.content.iter_any():
            read += len(chunk)
            if read >= limits.max_response_bytes:
                break  # leaving unread: the connection is closed, not reused
        return response.status


def describe(exc: aiohttp.ClientError) -> str:
    """An attempt's error, in httpx's names as before: ``ConnectError: …`` (nothing sent),
    ``ReadError: …`` and so on."""
    return f"{http.transport_error(exc).__name__}: {exc}"[:500]
