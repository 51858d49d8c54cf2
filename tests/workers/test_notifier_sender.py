"""The notifier's POST on aiohttp: to the checked address under the URL's name, the answer read
no further than the cap, failures named as httpx names them. Real sockets on 127.0.0.1."""

import asyncio
import socket

import aiohttp
import pytest
from payplane_core import egress, http
from workers.notifier import sender

LIMITS = sender.Limits(deadline_seconds=5, max_response_bytes=64 * 1024, allowlist=[])


async def _listen(handler) -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def _read_head(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    await reader.readexactly(length)
    return head


async def test_the_post_goes_to_the_pinned_address_under_the_urls_name():
    heads: list[bytes] = []

    async def answer(reader, writer):
        heads.append(await _read_head(reader))
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await writer.drain()
        writer.close()

    server, port = await _listen(answer)
    pinned = egress.Pinned(
        url=f"http://shop.test:{port}/hook", host="shop.test", address="127.0.0.1"
    )
    async with server, http.pool() as session:
        status = await sender._post(
            session, pinned, '{"a": 1}', "evt_1", ("whsec_" + "A" * 32,), LIMITS
        )
    assert status == 204
    head = heads[0].lower()
    assert head.startswith(b"post /hook http/1.1")
    assert f"\r\nhost: shop.test:{port}\r\n".encode() in head
    assert b"\r\nwebhook-id: evt_1\r\n" in head and b"\r\nwebhook-signature: v1," in head


async def test_an_endless_answer_is_read_no_further_than_the_cap():
    sent = 0

    async def flood(reader, writer):
        nonlocal sent
        await _read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n")
        try:
            while sent < 100 * 1024 * 1024:
                writer.write(b"x" * 65536)
                sent += 65536
                await writer.drain()
        except ConnectionError:
            pass  # the notifier hung up once it had read enough
        writer.close()

    server, port = await _listen(flood)
    pinned = egress.Pinned(url=f"http://127.0.0.1:{port}/", host="127.0.0.1", address="127.0.0.1")
    async with server, http.pool() as session:
        status = await asyncio.wait_for(
            sender._post(session, pinned, "{}", "evt_2", ("whsec_" + "A" * 32,), LIMITS), 10
        )
    assert status == 200
    assert sent < 100 * 1024 * 1024  # it stopped reading long before the server stopped sending


async def test_nothing_listening_is_named_a_connect_error():
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    pinned = egress.Pinned(url=f"http://127.0.0.1:{port}/", host="127.0.0.1", address="127.0.0.1")
    async with http.pool() as session:
        with pytest.raises(aiohttp.ClientError) as failure:
            await sender._post(session, pinned, "{}", "evt_3", ("whsec_" + "A" * 32,), LIMITS)
    assert sender.describe(failure.value).startswith("ConnectError: ")


async def test_an_answer_that_is_not_http_is_named_a_protocol_error():
    async def garbage(reader, writer):
        await _read_head(reader)
        writer.write(b"this is not HTTP\r\n\r\n")
        await writer.drain()
        writer.close()

    server, port = await _listen(garbage)
    pinned = egress.Pinned(url=f"http://127.0.0.1:{port}/", host="127.0.0.1", address="127.0.0.1")
    async with server, http.pool() as session:
        with pytest.raises(aiohttp.ClientError) as failure:
            await sender._post(session, pinned, "{}", "evt_4", ("whsec_" + "A" * 32,), LIMITS)
    assert sender.describe(failure.value).startswith("RemoteProtocolError: ")
