"""httpx on aiohttp's connection pool: the same client API, a fraction of the CPU per request.

httpx's own pool (httpcore over anyio and h11) costs 0.8–1.1 ms of CPU per request on this
machine; aiohttp's 0.1–0.2 ms (``python -m benchmarks http``). A payment's life makes seven such
calls in the services (charge, two status reports, the provider's callback, three merchant
webhooks), so the pool underneath is worth changing. Everything above it stays httpx's: the
client API, auth flows (internal signatures), timeouts, exceptions and the OpenTelemetry
instrumentation, which wraps ``httpx.AsyncHTTPTransport.handle_async_request``. That is why
``AiohttpTransport`` is an ``AsyncHTTPTransport`` whose pool is replaced (httpx pinned in
uv.lock; ``tests/core/test_http_pool.py`` guards the seam) instead of a transport of its own.

What a caller may conclude from an error is kept exact, because the providers service decides
whether a charge can have happened from it: only a failure to connect (refused, DNS, TLS, the
connect time-out) becomes ``ConnectError``/``ConnectTimeout`` ("nothing was sent"); a
connection dropped or timing out after that is a read error ("unknown"), never a connect error.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

import aiohttp
import httpcore
import httpx
from yarl import URL

# Most specific first: ClientConnectorError and ServerDisconnectedError are ClientOSError /
# ClientConnectionError too, and ConnectionTimeoutError is a ServerTimeoutError.
_ERRORS: tuple[tuple[type[BaseException], type[Exception]], ...] = (
    (aiohttp.ConnectionTimeoutError, httpcore.ConnectTimeout),
    (aiohttp.ClientConnectorError, httpcore.ConnectError),
    (aiohttp.ServerTimeoutError, httpcore.ReadTimeout),
    (aiohttp.ServerDisconnectedError, httpcore.RemoteProtocolError),
    (aiohttp.ClientResponseError, httpcore.RemoteProtocolError),
    (aiohttp.ClientPayloadError, httpcore.ReadError),
    (aiohttp.InvalidURL, httpcore.UnsupportedProtocol),
    (aiohttp.ClientError, httpcore.ReadError),
    (asyncio.TimeoutError, httpcore.ReadTimeout),
)
# httpx sends these itself (with the values it computed); aiohttp must not add its own.
_NOT_AUTOMATIC = frozenset({"Accept", "Accept-Encoding", "User-Agent", "Content-Type"})


@contextlib.contextmanager
def _mapped() -> Iterator[None]:
    try:
        yield
    except (TimeoutError, aiohttp.ClientError) as exc:
        for theirs, ours in _ERRORS:
            if isinstance(exc, theirs):
                raise ours(str(exc) or type(exc).__name__) from exc
        raise  # pragma: no cover - _ERRORS ends with both base classes


class _Body:
    """A response body for httpcore: read as it arrives; closing it returns the connection to
    the pool if the body was read to its end (aiohttp closes it otherwise)."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _mapped():
            async for chunk in self._response.content.iter_any():
                yield chunk

    async def aclose(self) -> None:
        self._response.release()


def _seconds(*parts: float | None) -> float | None:
    return None if any(p is None for p in parts) else sum(parts)  # type: ignore[arg-type]


class AiohttpPool:
    """What ``AsyncHTTPTransport`` asks of its pool (httpcore's request in, response out),
    served by one ``aiohttp.ClientSession`` per event loop."""

    def __init__(self, *, limits: httpx.Limits, ssl_context) -> None:
        self._limits = limits
        self._ssl = ssl_context
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _current_session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            connector = aiohttp.TCPConnector(
                limit=self._limits.max_connections or 0,
                limit_per_host=0,
                keepalive_timeout=self._limits.keepalive_expiry,
                ssl=self._ssl,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),  # as httpx's transport: no cookies kept
                auto_decompress=False,  # httpx decodes Content-Encoding itself
                trust_env=False,  # proxies are httpx's business (trust_env of the client)
                skip_auto_headers=_NOT_AUTOMATIC,
                timeout=aiohttp.ClientTimeout(total=None),
            )
            self._loop = loop
        return self._session

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        timeout = request.extensions.get("timeout", {})
        body = b"".join([part async for part in request.stream])  # type: ignore[union-attr]
        headers = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in request.headers
            if name.lower() != b"transfer-encoding"  # the body goes whole, with its length
        ]
        session = self._current_session()
        with _mapped():
            response = await session.request(
                request.method.decode("ascii"),
                _url(request.url),
                headers=headers,
                data=body or None,
                allow_redirects=False,
                server_hostname=request.extensions.get("sni_hostname"),
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=_seconds(timeout.get("pool"), timeout.get("connect")),
                    sock_connect=timeout.get("connect"),
                    sock_read=timeout.get("read"),
                ),
            )
        return httpcore.Response(
            status=response.status,
            headers=list(response.raw_headers),
            content=_Body(response),
            extensions={
                "http_version": b"HTTP/1.1",
                "reason_phrase": (response.reason or "").encode("latin-1", "replace"),
            },
        )

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def __aenter__(self) -> "AiohttpPool":
        return self

    async def __aexit__(self, *_exc) -> None:
        await self.aclose()


def _url(url: httpcore.URL) -> URL:
    host = url.host.decode("ascii")
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    port = "" if url.port is None else f":{url.port}"
    return URL(
        f"{url.scheme.decode('ascii')}://{host}{port}{url.target.decode('ascii')}", encoded=True
    )


class AiohttpTransport(httpx.AsyncHTTPTransport):
    """``httpx.AsyncHTTPTransport`` with aiohttp's pool underneath (see the module's doc)."""

    def __init__(
        self,
        *,
        verify: bool = True,
        limits: httpx.Limits = httpx.Limits(max_connections=100, max_keepalive_connections=20),  # noqa: B008
        trust_env: bool = False,
    ) -> None:
        super().__init__(verify=verify, limits=limits, trust_env=trust_env)
        self._pool = AiohttpPool(  # type: ignore[assignment]
            limits=limits,
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=trust_env),
        )
