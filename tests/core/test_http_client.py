"""payplane_core.http: httpx's API over aiohttp, against real sockets that misbehave.

What matters is which error a failure becomes: providers fails a charge over to another
provider only when nothing can have been sent (a connect error), so a server that hangs up
after reading the request must never look like one.
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest
from payplane_core import http
from providers.policy import Result
from providers.provider_client import charge

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
PAYMENT = {"id": "pay_1", "amount": 100, "currency": "EUR"}


@asynccontextmanager
async def tcp_server(handler: Handler) -> AsyncIterator[str]:
    """A real listener on 127.0.0.1 whose every connection ``handler`` serves."""
    seen: list[asyncio.Task] = []

    async def serve(reader, writer):
        seen.append(asyncio.current_task())
        try:
            await handler(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        for task in seen:
            task.cancel()
        await server.wait_closed()


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    return head, await reader.readexactly(length)


async def answer_ok(reader, writer):
    while True:
        head, body = await read_request(reader)
        echo = head.split(b"\r\n")[0] + b"|" + body
        writer.write(b"HTTP/1.1 201 Created\r\nContent-Length: %d\r\n\r\n%s" % (len(echo), echo))
        await writer.drain()


async def hang_up_after_reading(reader, writer):
    await read_request(reader)


async def never_answer(reader, writer):
    await read_request(reader)
    await asyncio.Event().wait()


async def answer_garbage(reader, writer):
    await read_request(reader)
    writer.write(b"this is not HTTP\r\n\r\n")
    await writer.drain()


async def cut_the_body_short(reader, writer):
    await read_request(reader)
    writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"status":')
    await writer.drain()


async def test_a_request_and_its_answer_go_through_and_connections_are_reused():
    connections = 0

    async def counting(reader, writer):
        nonlocal connections
        connections += 1
        await answer_ok(reader, writer)

    async with tcp_server(counting) as url, http.client(base_url=url) as client:
        for n in range(3):
            response = await client.post("/v1/things", content=f"body-{n}".encode())
            assert response.status_code == 201
            assert response.content == f"POST /v1/things HTTP/1.1|body-{n}".encode()
    assert connections == 1


async def test_the_host_header_given_is_the_one_sent():
    """The notifier connects to the address it checked and names the URL's host."""
    heads: list[bytes] = []

    async def recording(reader, writer):
        head, _ = await read_request(reader)
        heads.append(head)
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await writer.drain()

    async with tcp_server(recording) as url, http.client() as client:
        response = await client.post(url + "/hook", content=b"{}", headers={"host": "shop.test"})
    assert response.status_code == 204
    assert b"\r\nhost: shop.test\r\n" in heads[0].lower()


async def test_a_cookie_an_answer_sets_is_never_sent_back():
    """One merchant's endpoint must not plant a cookie on the deliveries that follow."""
    heads: list[bytes] = []

    async def setting_a_cookie(reader, writer):
        while True:
            head, _ = await read_request(reader)
            heads.append(head.lower())
            writer.write(
                b"HTTP/1.1 200 OK\r\nSet-Cookie: session=planted; Path=/\r\n"
                b"Content-Length: 0\r\n\r\n"
            )
            await writer.drain()

    async with tcp_server(setting_a_cookie) as url, http.client(base_url=url) as client:
        first = await client.post("/hook", content=b"{}")
        await client.post("/hook", content=b"{}")
    assert first.headers["set-cookie"].startswith("session=planted")
    assert len(heads) == 2
    assert b"cookie:" not in heads[1]
    with pytest.raises(TypeError):
        client.cookies = {"session": "x"}


async def test_nothing_listening_is_a_connect_error():
    async with tcp_server(answer_ok) as url:
        pass  # closed again: the port refuses
    async with http.client() as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(url)


async def test_a_hang_up_after_the_request_was_read_is_not_a_connect_error():
    async with tcp_server(hang_up_after_reading) as url, http.client() as client:
        with pytest.raises(httpx.TransportError) as raised:
            await client.post(url, content=b"{}")
    assert isinstance(raised.value, httpx.ReadError), type(raised.value)


async def test_no_answer_in_time_is_a_read_timeout():
    async with tcp_server(never_answer) as url, http.client(timeout=0.3) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.post(url, content=b"{}")


async def test_a_malformed_answer_is_a_protocol_error():
    async with tcp_server(answer_garbage) as url, http.client() as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post(url, content=b"{}")


async def test_a_body_cut_short_is_a_read_error():
    async with tcp_server(cut_the_body_short) as url, http.client() as client:
        with pytest.raises(httpx.ReadError):
            await client.post(url, content=b"{}")


async def test_waiting_too_long_for_a_pooled_connection_is_a_connect_timeout():
    holding = asyncio.Event()

    async def hold(reader, writer):
        await read_request(reader)
        holding.set()
        await asyncio.Event().wait()

    limits = httpx.Limits(max_connections=1)
    async with tcp_server(hold) as url, http.client(limits=limits) as client:
        first = asyncio.create_task(client.post(url, content=b"{}", timeout=5))
        await asyncio.wait_for(holding.wait(), 5)  # the only connection is taken
        with pytest.raises(httpx.ConnectTimeout):
            await client.post(url, content=b"{}", timeout=httpx.Timeout(5, pool=0.2))
        first.cancel()


@pytest.mark.parametrize(
    ("server", "result"),
    [(hang_up_after_reading, Result.AMBIGUOUS), (cut_the_body_short, Result.AMBIGUOUS)],
)
async def test_a_charge_that_may_have_been_taken_is_ambiguous_never_not_sent(server, result):
    async with tcp_server(server) as url, http.client() as client:
        outcome = await charge(
            client, endpoint=url, api_key="k", payment=PAYMENT, timeout_seconds=2
        )
    assert outcome.result is result, outcome


async def test_a_charge_to_nobody_is_not_sent():
    async with tcp_server(answer_ok) as url:
        pass
    async with http.client() as client:
        outcome = await charge(
            client, endpoint=url, api_key="k", payment=PAYMENT, timeout_seconds=2
        )
    assert outcome.result is Result.NOT_SENT, outcome


async def test_an_answer_that_never_ends_meets_the_requests_deadline():
    """Every read gets data within the read time-out, so no per-read timer ever fires; the
    deadline (pool + connect + read from the start) ends it all the same."""

    async def trickle(reader, writer):
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n")
        while True:
            writer.write(b"x")
            await writer.drain()
            await asyncio.sleep(0.05)

    timeout = httpx.Timeout(0.3)  # deadline: 0.9 s
    loop = asyncio.get_running_loop()
    async with tcp_server(trickle) as url, http.client(timeout=timeout) as client:
        started = loop.time()
        with pytest.raises(httpx.ReadTimeout):
            await client.post(url, content=b"{}")
    assert 0.9 <= loop.time() - started < 5
