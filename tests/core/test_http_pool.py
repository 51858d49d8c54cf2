"""httpx on aiohttp's pool (payplane_core.http_pool) against real local TCP servers: what goes on
the wire, and which httpx error each way of failing becomes (providers decides from it whether a
charge can have happened)."""

import asyncio
import contextlib
import socket

import httpx
import pytest
from payplane_core.http_pool import AiohttpPool, AiohttpTransport

pytestmark = pytest.mark.asyncio


@contextlib.asynccontextmanager
async def tcp_server(handler):
    """A raw server on a free port; yields (base url, the connections it accepted)."""
    accepted: list[int] = []

    async def on_connect(reader, writer):
        accepted.append(1)
        try:
            await handler(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", accepted
    finally:
        server.close()


async def read_request(reader) -> tuple[bytes, list[tuple[str, str]], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    line, *fields = head.decode("latin-1").split("\r\n")[:-2]
    headers = [tuple(part.strip() for part in f.split(":", 1)) for f in fields]
    length = int(next((v for k, v in headers if k.lower() == "content-length"), "0"))
    return line.encode(), headers, await reader.readexactly(length)


def answer(body: bytes, status: str = "200 OK") -> bytes:
    return b"HTTP/1.1 %s\r\ncontent-length: %d\r\n\r\n%s" % (status.encode(), len(body), body)


async def test_a_request_goes_out_as_httpx_built_it_and_the_connection_is_reused():
    seen = []

    async def echo(reader, writer):
        while True:
            try:
                request = await read_request(reader)
            except asyncio.IncompleteReadError:
                return
            seen.append(request)
            writer.write(answer(b'{"ok": true}', "201 Created"))
            await writer.drain()

    async with tcp_server(echo) as (base, accepted):
        async with httpx.AsyncClient(base_url=base, transport=AiohttpTransport()) as client:
            for _ in range(3):
                response = await client.post(
                    "/v1/a%20b?x=%C3%A9&y=1",
                    content=b"raw body",
                    headers=[("x-twice", "1"), ("x-twice", "2"), ("host", "merchant.example")],
                )
                assert (response.status_code, response.json()) == (201, {"ok": True})
                assert response.reason_phrase == "Created"
    assert len(accepted) == 1, "keep-alive: three requests, one connection"
    line, headers, body = seen[0]
    assert line == b"POST /v1/a%20b?x=%C3%A9&y=1 HTTP/1.1"
    assert body == b"raw body"
    names = [k.lower() for k, _ in headers]
    assert [v for k, v in headers if k.lower() == "x-twice"] == ["1", "2"]
    assert dict((k.lower(), v) for k, v in headers)["host"] == "merchant.example"
    assert "content-type" not in names, "aiohttp must not invent a content type"
    assert dict((k.lower(), v) for k, v in headers)["user-agent"].startswith("python-httpx/")
    assert names.count("host") == names.count("user-agent") == 1


async def test_connection_refused_is_a_connect_error_so_nothing_was_sent():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with httpx.AsyncClient(transport=AiohttpTransport()) as client:
        with pytest.raises(httpx.ConnectError):
            await client.post(f"http://127.0.0.1:{port}/v1/charges", content=b"{}")


async def test_a_connection_dropped_after_the_request_is_not_a_connect_error():
    async def hang_up(reader, writer):
        await read_request(reader)  # the request arrived: it may have been acted on

    async with tcp_server(hang_up) as (base, _):
        async with httpx.AsyncClient(transport=AiohttpTransport()) as client:
            with pytest.raises(httpx.TransportError) as caught:
                await client.post(f"{base}/v1/charges", content=b"{}")
    assert not isinstance(caught.value, (httpx.ConnectError, httpx.ConnectTimeout))
    assert isinstance(caught.value, httpx.RemoteProtocolError)


async def test_no_answer_in_time_is_a_read_timeout():
    release = asyncio.Event()

    async def silent(reader, writer):
        await read_request(reader)
        await release.wait()

    async with tcp_server(silent) as (base, _):
        async with httpx.AsyncClient(transport=AiohttpTransport()) as client:
            with pytest.raises(httpx.ReadTimeout):
                await client.post(f"{base}/v1/charges", content=b"{}", timeout=0.2)
        release.set()


async def test_no_free_connection_in_time_is_a_pool_or_connect_timeout_so_nothing_was_sent():
    release, arrived = asyncio.Event(), asyncio.Event()

    async def slow(reader, writer):
        await read_request(reader)
        arrived.set()
        await release.wait()
        writer.write(answer(b"{}"))
        await writer.drain()

    limits = httpx.Limits(max_connections=1)
    async with tcp_server(slow) as (base, _):
        async with httpx.AsyncClient(transport=AiohttpTransport(limits=limits)) as client:
            first = asyncio.create_task(client.post(f"{base}/a", content=b"{}", timeout=5))
            await arrived.wait()  # the first holds the only connection
            with pytest.raises(httpx.ConnectTimeout):
                await client.post(
                    f"{base}/b", content=b"{}", timeout=httpx.Timeout(5, pool=0.1, connect=0.1)
                )
            release.set()
            assert (await first).status_code == 200


async def test_a_bounded_read_closes_the_connection_and_a_full_read_keeps_it():
    async def big(reader, writer):
        while True:
            try:
                line, _, _ = await read_request(reader)
            except asyncio.IncompleteReadError:
                return
            size = 4_000_000 if b"/big" in line else 10
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % size)
            writer.write(b"x" * size)
            await writer.drain()

    async with tcp_server(big) as (base, accepted):
        async with httpx.AsyncClient(base_url=base, transport=AiohttpTransport()) as client:
            async with client.stream("POST", "/big", content=b"{}") as response:
                read = 0
                async for chunk in response.aiter_raw():
                    read += len(chunk)
                    if read >= 1000:
                        break
            assert 1000 <= read < 4_000_000
            assert (await client.get("/small")).content == b"x" * 10
            assert (await client.get("/small")).content == b"x" * 10
    assert len(accepted) == 2, "the half-read connection is not reused; the full one is"


async def test_a_closed_session_is_replaced_by_a_new_one():
    pool = AiohttpPool(limits=httpx.Limits(), ssl_context=None)
    session = pool._current_session()
    assert pool._current_session() is session
    await pool.aclose()
    assert pool._current_session() is not session
    await pool.aclose()


async def test_the_transport_is_the_one_opentelemetry_instruments():
    from opentelemetry import trace
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.sdk.trace import TracerProvider

    seen = []

    async def echo(reader, writer):
        seen.append(await read_request(reader))
        writer.write(answer(b"{}"))
        await writer.drain()

    instrumentor = HTTPXClientInstrumentor()
    already = instrumentor.is_instrumented_by_opentelemetry
    provider = TracerProvider()
    if not already:
        instrumentor.instrument(tracer_provider=provider)
    try:
        async with tcp_server(echo) as (base, _):
            async with httpx.AsyncClient(transport=AiohttpTransport()) as client:
                with provider.get_tracer("t").start_as_current_span("caller") as span:
                    await client.get(f"{base}/x")
    finally:
        if not already:
            instrumentor.uninstrument()
    carried = dict((k.lower(), v) for k, v in seen[0][1])["traceparent"]
    assert carried.split("-")[1] == format(span.get_span_context().trace_id, "032x")
    assert trace.get_current_span() is trace.INVALID_SPAN
