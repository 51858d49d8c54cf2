"""What one outgoing request costs its caller: ``payplane_core.http.client`` against aiohttp
alone (the floor it is built on) and httpx's own transport, in the same run.

Seven such requests make up a payment's life (providers to the provider and to payments, the
provider's callback, webhooks to payments, three merchant webhooks), so a few tens of µs here
are a few tenths of a ms per payment. The server is a plain aiohttp app in its own process;
only the client's CPU (``getrusage``) is counted. ``PAYPLANE_BENCH_CLIENT_REQUESTS`` sets the
number of sequential POSTs of 1 KiB per client (3,000 unless told).
"""

import asyncio
import multiprocessing
import os
import resource
import socket

import aiohttp
import httpx
import uvloop
from aiohttp import web
from payplane_core import http

REQUESTS = int(os.environ.get("PAYPLANE_BENCH_CLIENT_REQUESTS", "3000"))
BODY = b'{"data": "' + b"x" * 1012 + b'"}'
WARM_UP = 200


def _serve(sock: socket.socket) -> None:
    async def answer(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"ok": True})

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/v1/things", answer)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        await asyncio.Event().wait()

    asyncio.run(main())


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _per_request_us(send) -> float:
    for _ in range(WARM_UP):
        await send()
    start = _cpu_seconds()
    for _ in range(REQUESTS):
        await send()
    return (_cpu_seconds() - start) / REQUESTS * 1e6


async def _measure(url: str) -> dict[str, float]:
    ours = http.client(base_url=url, timeout=5)
    httpcore = httpx.AsyncClient(base_url=url, timeout=5)
    session = aiohttp.ClientSession(base_url=url)

    async def via(client: httpx.AsyncClient) -> None:
        response = await client.post("/v1/things", content=BODY)
        assert response.status_code == 200, response.status_code

    async def alone() -> None:
        async with session.post("/v1/things", data=BODY) as response:
            await response.read()
            assert response.status == 200, response.status

    try:
        return {
            "payplane_core.http": await _per_request_us(lambda: via(ours)),
            "aiohttp alone": await _per_request_us(alone),
            "httpx's own transport": await _per_request_us(lambda: via(httpcore)),
        }
    finally:
        await ours.aclose()
        await httpcore.aclose()
        await session.close()


def run_bench() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = multiprocessing.Process(target=_serve, args=(sock,), daemon=True)
    server.start()
    try:
        # The socket listens before the fork: the first requests wait in its backlog until
        # the server accepts (a server that never starts fails them by their 5 s timeout).
        figures = uvloop.run(_measure(url))
    finally:
        server.terminate()
        server.join()
    floor = figures["aiohttp alone"]
    print(
        f"  {REQUESTS} sequential POSTs of {len(BODY)} bytes per client, client CPU only "
        "(server in its own process)"
    )
    for name, us in figures.items():
        print(
            f"  {name:22s} {us:6.0f} µs CPU per request ({us - floor:+.0f} µs over aiohttp alone)"
        )
