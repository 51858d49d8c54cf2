"""Every outgoing HTTP client of the platform: httpx's API over aiohttp's connections.

httpx's own transport (httpcore over anyio and h11) was 30-40 % of the CPU of each process that
calls another under ``python -m benchmarks lifecycle`` (the notifier, providers, webhooks, the
simulator). The same requests through ``httpx_aiohttp``'s transport, which hands them to an
aiohttp connection pool, cost a quarter of that; what the services see (auth flows that sign,
timeouts, ``httpx`` errors and responses, a test's own transport) stays httpx's.

One thing is not left to that transport: which error a failure becomes. Callers decide on it
whether a request may have reached the server. providers fails a charge over to the next
provider only on ``ConnectError`` / ``ConnectTimeout`` / ``PoolTimeout`` (nothing was sent),
while httpx_aiohttp maps every aiohttp connection error, a server that hung up mid-answer
included, to ``ConnectTimeout``, and lets some aiohttp errors through unmapped. Here only a
failure to get a connection is a connect error; any other failure is a ``ReadError``,
``ReadTimeout`` or ``RemoteProtocolError``: it may have been sent.

Nor is the end of a request left to aiohttp's per-read timer alone. When this swap was first
tried (third round, docs/performance.md) one providers → payments report stalled for three
minutes under load, cause unproven; aiohttp stops its ``sock_read`` timer while reading is
paused. So every request also has a hard deadline, its pool + connect + read timeouts from its
start, over the answer's head and its body alike; past it, a ``ReadTimeout``.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from payplane_core import telemetry

# Failures before any byte of the request could be written, most specific first.
_NOT_SENT: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),  # connect, or waiting for the pool
    (aiohttp.ClientConnectorError, httpx.ConnectError),  # refused, DNS, TLS handshake
)
# Failures once the request may have been sent.
_MAY_HAVE_BEEN_SENT: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (aiohttp.ServerTimeoutError, httpx.ReadTimeout),
    (aiohttp.ClientResponseError, httpx.RemoteProtocolError),  # a malformed answer
    (aiohttp.ClientError, httpx.ReadError),  # hung up, reset, a body cut short
)


def transport_error(exc: Exception) -> type[httpx.TransportError]:
    """The httpx error an aiohttp failure stands for."""
    for aiohttp_error, httpx_error in _NOT_SENT + _MAY_HAVE_BEEN_SENT:
        if isinstance(exc, aiohttp_error):
            return httpx_error
    return httpx.ReadError


@contextlib.asynccontextmanager
async def _precise_errors(deadline: float | None = None) -> AsyncIterator[None]:
    try:
        async with asyncio.timeout_at(deadline):
            yield
    except httpx.TransportError as exc:
        if not isinstance(exc.__cause__, aiohttp.ClientError):
            raise
        raise transport_error(exc.__cause__)(str(exc.__cause__)) from exc.__cause__
    except aiohttp.ClientError as exc:
        raise transport_error(exc)(str(exc)) from exc
    except TimeoutError as exc:  # the deadline (aiohttp's own time-outs are ClientErrors)
        raise httpx.ReadTimeout("no complete answer before the request's deadline") from exc


def _deadline(request: httpx.Request) -> float | None:
    """Pool + connect + read timeouts from now, on the loop's clock; None if any is unset."""
    timeout = request.extensions.get("timeout", {})
    parts = [timeout.get(part) for part in ("pool", "connect", "read")]
    if any(part is None for part in parts):
        return None
    return asyncio.get_running_loop().time() + sum(parts)


class _Body(httpx.AsyncByteStream):
    def __init__(self, stream: httpx.AsyncByteStream, deadline: float | None) -> None:
        self._stream = stream
        self._deadline = deadline

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunks = aiter(self._stream)
        while True:
            # Each read under the deadline, none across a yield: the consumer's time between
            # chunks is its own.
            async with _precise_errors(self._deadline):
                chunk = await anext(chunks, None)
            if chunk is None:
                return
            yield chunk

    async def aclose(self) -> None:
        async with _precise_errors():
            await self._stream.aclose()


class Transport(AiohttpTransport):
    """httpx_aiohttp's transport with the errors and the deadline above."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        deadline = _deadline(request)
        async with _precise_errors(deadline):
            response = await super().handle_async_request(request)
        response.stream = _Body(response.stream, deadline)
        return response


def client(*, limits: httpx.Limits | None = None, **options: Any) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` (``options`` are its arguments) over aiohttp; a ``transport``
    in ``options`` (a test's) is used instead. Traced like any httpx client when tracing is
    on (the global instrumentation covers httpx's own transport only)."""
    if options.get("transport") is None:
        options["transport"] = Transport(limits=limits or httpx.Limits(max_connections=100))
    http = httpx.AsyncClient(**options)
    telemetry.instrument_http_client(http)
    return http
