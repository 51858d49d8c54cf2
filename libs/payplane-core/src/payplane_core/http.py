"""Every outgoing HTTP client of the platform: httpx's API over aiohttp's connections.

httpx's own transport (httpcore over anyio and h11) was 30-40 % of the CPU of each process that
calls another under ``python -m benchmarks lifecycle`` (the notifier, providers, webhooks, the
simulator). The same requests on an aiohttp connection pool cost a quarter of that; what the
services see (auth flows that sign, timeouts, ``httpx`` errors and responses, a test's own
transport) stays httpx's. The transport is this module's own, not ``httpx_aiohttp``'s (used
until the seventh round): that one handed aiohttp httpx's ``Headers`` to copy value by value and
read answers through two stream layers and two error mappings, about 140 µs of CPU per request
more than aiohttp alone, against 60 µs for this one (``docs/performance.md``).

One thing is not left to aiohttp: which error a failure becomes. Callers decide on it
whether a request may have reached the server. providers fails a charge over to the next
provider only on ``ConnectError`` / ``ConnectTimeout`` / ``PoolTimeout`` (nothing was sent).
Here only a failure to get a connection is a connect error; any other failure is a
``ReadError``, ``ReadTimeout`` or ``RemoteProtocolError``: it may have been sent.

Nor is the end of a request left to aiohttp's per-read timer alone. When aiohttp was first
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
import yarl

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
    except aiohttp.ClientError as exc:
        raise transport_error(exc)(str(exc)) from exc
    except TimeoutError as exc:  # the deadline (aiohttp's own time-outs are ClientErrors)
        raise httpx.ReadTimeout("no complete answer before the request's deadline") from exc


def _deadline(timeout: dict[str, float | None]) -> float | None:
    """Pool + connect + read timeouts from now, on the loop's clock; None if any is unset."""
    parts = [timeout.get(part) for part in ("pool", "connect", "read")]
    if any(part is None for part in parts):
        return None
    return asyncio.get_running_loop().time() + sum(parts)


class _Body(httpx.AsyncByteStream):
    """The answer's body, read as httpx asks for it: each read under the deadline, none across
    a yield (the consumer's time between chunks is its own)."""

    CHUNK = 64 * 1024

    def __init__(self, response: aiohttp.ClientResponse, deadline: float | None) -> None:
        self._response = response
        self._deadline = deadline

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            async with _precise_errors(self._deadline):
                chunk = await self._response.content.read(self.CHUNK)
            if not chunk:
                return
            yield chunk
            if self._response.content.at_eof():  # most answers: one chunk, no second read
                return

    async def aclose(self) -> None:
        async with _precise_errors():
            self._response.release()  # back to the pool if read to the end, else closed
            await self._response.wait_for_close()


def pool(limits: httpx.Limits | None = None) -> aiohttp.ClientSession:
    """An aiohttp connection pool as every client here has it: certificates verified as httpx
    would, no cookie jar, no decompression, no proxies from the environment. Callers that
    speak aiohttp directly (the notifier's webhooks) name failures with ``transport_error``."""
    limits = limits or httpx.Limits(max_connections=100)
    connector = aiohttp.TCPConnector(
        limit=limits.max_connections or 0,
        keepalive_timeout=limits.keepalive_expiry,
        ssl=httpx.create_ssl_context(),
    )
    return aiohttp.ClientSession(
        connector=connector, auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar()
    )


class Transport(httpx.AsyncBaseTransport):
    """httpx requests on one aiohttp connection pool, with the errors and the deadline above.

    Options are fixed where httpx already does the work: no redirects, no decompression (httpx
    decodes), no cookies or proxies from the environment.
    """

    def __init__(self, *, limits: httpx.Limits | None = None) -> None:
        self._limits = limits or httpx.Limits(max_connections=100)
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[tuple, aiohttp.ClientTimeout] = {}

    def _pool(self) -> aiohttp.ClientSession:
        if self._session is None:  # made on first use: it belongs to the running loop
            self._session = pool(self._limits)
        return self._session

    def _timeout(self, timeout: dict[str, float | None]) -> aiohttp.ClientTimeout:
        """Waiting for a pooled connection counts against ``pool`` (a ``ConnectTimeout``)."""
        key = (timeout.get("pool"), timeout.get("connect"), timeout.get("read"))
        if key not in self._timeouts:
            pool, connect, read = key
            self._timeouts[key] = aiohttp.ClientTimeout(
                connect=pool, sock_connect=connect, sock_read=read
            )
        return self._timeouts[key]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeout = request.extensions.get("timeout", {})
        deadline = _deadline(timeout)
        try:
            data: bytes | httpx.AsyncByteStream | None = request.content or None
        except httpx.RequestNotRead:  # a streamed body: aiohttp frames it itself
            data = request.stream  # type: ignore[assignment]
            request.headers.pop("transfer-encoding", None)
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
        async with _precise_errors(deadline):
            response = await self._pool().request(
                request.method,
                yarl.URL(str(request.url), encoded=True),
                headers=headers,
                data=data,
                allow_redirects=False,
                compress=False,
                timeout=self._timeout(timeout),
                server_hostname=request.extensions.get("sni_hostname"),
            )
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_Body(response, deadline),
            request=request,
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


class _NoCookies(httpx.Cookies):
    """Nothing kept: an answer's ``Set-Cookie`` never rides on a later request (one merchant's
    endpoint setting a cookie for the next delivery), and no answer pays for parsing it."""

    def extract_cookies(self, response: httpx.Response) -> None:
        pass


class _Client(httpx.AsyncClient):
    _none = _NoCookies()

    @property
    def cookies(self) -> httpx.Cookies:
        return self._none

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        raise TypeError("the platform's HTTP clients keep no cookies")


def client(*, limits: httpx.Limits | None = None, **options: Any) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` (``options`` are its arguments) over aiohttp; a ``transport``
    in ``options`` (a test's) is used instead. Traced like any httpx client when tracing is
    on (the global instrumentation covers httpx's own transport only)."""
    if options.get("transport") is None:
        options["transport"] = Transport(limits=limits)
    http = _Client(**options)
    telemetry.instrument_http_client(http)
    return http
