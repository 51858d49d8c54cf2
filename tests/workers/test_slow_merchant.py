"""One merchant's slow endpoint cannot hold up another's webhooks, and webhooks reach only
public addresses (or the local allowlist), checked again when they are sent."""

import asyncio
import time
import uuid
from contextlib import asynccontextmanager

import httpx
from sqlalchemy import text

from tests.support.internal import GatewayAuth
from tests.support.pipeline import insert_outbox_events, wait_until


@asynccontextmanager
async def trickling_endpoint():
    """Answers 200 at once, then a 1 MB body one byte every 3 s: a slow or hostile merchant.
    Yields its URL and a record of connections (open now, most at once)."""
    seen = {"open": 0, "most": 0, "total": 0}
    writers = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
            length = int(head.split("content-length:", 1)[1].split("\r\n", 1)[0])
            await reader.readexactly(length)
        except (ConnectionError, asyncio.IncompleteReadError):
            writer.close()
            return
        seen["open"] += 1
        seen["total"] += 1
        seen["most"] = max(seen["most"], seen["open"])
        try:
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\n")
            while True:
                writer.write(b"x")
                await writer.drain()
                try:  # the next byte in 3 s, unless the client hangs up first
                    if not await asyncio.wait_for(reader.read(1), 3):
                        break
                except TimeoutError:
                    pass
        except ConnectionError:
            pass
        finally:
            seen["open"] -= 1
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/hook", seen
    finally:
        server.close()
        for writer in writers:
            writer.close()


async def merchant_at(merchants_url: str, webhook_url: str) -> httpx.Response:
    async with httpx.AsyncClient(
        base_url=merchants_url,
        auth=GatewayAuth(audience="merchants", caller="cli", scopes=(), key_id=""),
        timeout=10,
    ) as client:
        return await client.post(
            "/internal/v1/merchants",
            json={"name": f"wk-{uuid.uuid4().hex[:10]}", "webhook_url": webhook_url},
        )


async def attempt_errors(engine) -> list[str]:
    async with engine.connect() as conn:
        rows = await conn.scalars(text("SELECT coalesce(error, '') FROM delivery_attempts"))
        return list(rows)


async def test_a_trickling_endpoint_does_not_delay_another_merchant(
    pipeline, outbox_db, merchants_url, merchant, receiver, empty_notifier
):
    fast_id, _ = merchant
    async with trickling_endpoint() as (slow_url, seen):
        created = await merchant_at(merchants_url, slow_url)
        assert created.status_code == 201, created.text
        slow_id = created.json()["credentials"]["merchant_id"]
        # Few messages in flight and two attempts per merchant: without independent attempts
        # the slow merchant's events would fill every slot.
        await pipeline(NOTIFIER_PREFETCH="4", WEBHOOK_MAX_CONCURRENCY_PER_MERCHANT="2")
        await insert_outbox_events(outbox_db, 8, merchant_id=slow_id)
        await wait_until(lambda: seen["open"] >= 2, within=10, what="slow attempts under way")

        sent = time.time()
        [event_id] = await insert_outbox_events(outbox_db, 1, merchant_id=fast_id)
        [hit] = await wait_until(
            lambda: receiver.attempts_for(event_id), within=5, what="the other merchant's webhook"
        )
        assert hit.verified and hit.at - sent < 1.0, f"delayed {hit.at - sent:.2f}s"

        # The slow merchant never had more than its share, and each attempt ended at its
        # deadline (WEBHOOK_TIMEOUT_SECONDS=2 here), shorter than the lease.
        await wait_until(
            lambda: _count_timeouts(empty_notifier), within=10, what="a slow attempt timed out"
        )
        assert seen["most"] <= 2, seen


async def _count_timeouts(engine) -> int:
    return sum("timed out after 2s" in e for e in await attempt_errors(engine))


async def test_webhook_urls_must_be_public(merchants_url):
    for url in (
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata (link-local)
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://100.100.100.200/hook",  # shared address space
        "http://[fd00:ec2::254]/hook",
        "http://[::ffff:10.0.0.1]/hook",
        "http://0.0.0.0:9/hook",
    ):
        response = await merchant_at(merchants_url, url)
        assert response.status_code == 422, (url, response.text)
        assert response.json()["type"].endswith("/webhook-url-not-allowed")
    # loopback is on this suite's allowlist; a public address is always fine
    assert (await merchant_at(merchants_url, "http://127.0.0.1:9/hook")).status_code == 201
    assert (await merchant_at(merchants_url, "https://93.184.215.14/hook")).status_code == 201


async def test_delivery_checks_the_address_again(
    pipeline, outbox_db, merchant, receiver, empty_notifier
):
    """Merchants allowed the URL, but this notifier has no allowlist: loopback is refused at
    delivery time (a name whose DNS changes after creation is caught the same way)."""
    merchant_id, _ = merchant
    await pipeline(WEBHOOK_URL_ALLOWLIST="")
    await insert_outbox_events(outbox_db, 1, merchant_id=merchant_id)

    async def refused() -> bool:
        return any("not a public address" in e for e in await attempt_errors(empty_notifier))

    await wait_until(refused, within=10, what="the attempt refused")
    assert receiver.log == []
