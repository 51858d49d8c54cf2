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
"""

import contextlib
from collections.abc import AsyncIterator, Iterator
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


@contextlib.contextmanager
def _precise_errors() -> Iterator[None]:
    try:
        yield
    except httpx.TransportError as exc:
        if not isinstance(exc.__cause__, aiohttp.ClientError):
            raise
        raise transport_error(exc.__cause__)(str(exc.__cause__)) from exc.__cause__
    except aiohttp.ClientError as exc:
        raise transport_error(exc)(str(exc)) from exc


class _Body(httpx.AsyncByteStream):
    def __init__(self, stream: httpx.AsyncByteStream) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _precise_errors():
            async for chunk in self._stream:
                yield chunk

    async def aclose(self) -> None:
        with _precise_errors():
            await self._stream.aclose()


class Transport(AiohttpTransport):
    """httpx_aiohttp's transport with the errors above."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        with _precise_errors():
            response = await super().handle_async_request(request)
        response.stream = _Body(response.stream)
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
