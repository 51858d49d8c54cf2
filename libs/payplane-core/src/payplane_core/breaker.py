"""A circuit breaker kept in Redis, so every replica sees (and trips) the same circuit.

Keys for a breaker named ``cb:payments``: ``cb:payments:failures`` counts failures in a fixed
window (the counter expires ``window_seconds`` after its first failure) and
``cb:payments:open`` exists while the circuit is open; its TTL is the time left. The circuit
opens when ``failure_threshold`` failures land in one window and closes by itself when the open
key expires (no half-open probing: the next failures re-open it just as fast).

Failures are counted with or without successes in between (a flapping dependency still
trips). Callers that want "consecutive failures" semantics call ``record_success``, which
clears the count. Each operation is one atomic Lua script, one round trip.
"""

import asyncio
import logging
from dataclasses import dataclass

from prometheus_client import Gauge
from redis.asyncio import Redis

from payplane_core.dberrors import Fault, classify
from payplane_core.problems import retry_after

log = logging.getLogger(__name__)

OPEN = Gauge(
    "payplane_breaker_open",
    "1 while the circuit breaker is open, as last seen by this process",
    ["breaker"],
)


def observe(name: str, is_open: bool) -> None:
    """Record what a check of breaker ``name`` saw (scripts that check it inline call this)."""
    OPEN.labels(name).set(1 if is_open else 0)


# KEYS: failures, open. ARGV: threshold, window ms, open ms. Returns 1 when this call opened it.
_RECORD_FAILURE = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if n >= tonumber(ARGV[1]) then
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""


@dataclass(frozen=True, slots=True)
class BreakerState:
    open: bool
    retry_after_seconds: float  # 0 when closed

    @property
    def retry_after_header(self) -> str:
        """Whole seconds, at least 1, as ``Retry-After`` wants."""
        return retry_after(self.retry_after_seconds)


def open_key(name: str) -> str:
    """The key that exists while breaker ``name`` is open (for scripts that check it inline)."""
    return f"{name}:open"


class CircuitBreaker:
    def __init__(
        self,
        redis: Redis,
        name: str,
        *,
        failure_threshold: int = 5,
        window_seconds: float = 10.0,
        open_seconds: float = 30.0,
    ) -> None:
        if failure_threshold < 1 or window_seconds <= 0 or open_seconds <= 0:
            raise ValueError("threshold, window and open time must be positive")
        self.redis = redis
        self.name = name
        self.failure_threshold = failure_threshold
        self.window_ms = int(window_seconds * 1000)
        self.open_ms = int(open_seconds * 1000)
        self.failures_key = f"{name}:failures"
        self.open_key = open_key(name)
        self._record_failure = redis.register_script(_RECORD_FAILURE)

    async def record_failure(self) -> bool:
        """Count one failure; True if it is the one that opened the circuit."""
        opened = await self._record_failure(
            keys=[self.failures_key, self.open_key],
            args=[self.failure_threshold, self.window_ms, self.open_ms],
        )
        if opened:
            observe(self.name, True)
        return bool(opened)

    async def record_success(self) -> None:
        await self.redis.delete(self.failures_key)

    async def state(self) -> BreakerState:
        remaining_ms = await self.redis.pttl(self.open_key)
        if remaining_ms is None or remaining_ms < 0:  # -2: no key (closed); -1: never (n/a)
            observe(self.name, False)
            return BreakerState(open=False, retry_after_seconds=0.0)
        observe(self.name, True)
        return BreakerState(open=True, retry_after_seconds=remaining_ms / 1000)

    async def is_open(self) -> bool:
        return (await self.state()).open

    async def reset(self) -> None:
        """Close the circuit now (operators, tests)."""
        await self.redis.delete(self.failures_key, self.open_key)


INFRASTRUCTURE_STATUSES = frozenset({502, 503, 504})


class FailureReporter:
    """ASGI middleware: a service reports its own failures on one path into a breaker.

    Only infrastructure failures count: a 502, 503 or 504 on a request whose method and path
    match (services answer 503 only when a dependency is down, timed out or saturated, see
    ``payplane_core.dberrors``), or an escaping exception classified as infrastructure. A 500
    is a bug that one merchant's input may be able to trigger, so it never opens the shared
    circuit (it is logged and alerted on instead). Reporting never changes the response: if
    Redis itself is unreachable the failure is logged and dropped, bounded by
    ``timeout_seconds``.
    """

    def __init__(
        self,
        app,
        *,
        breaker: CircuitBreaker,
        methods: frozenset[str],
        path: str,
        timeout_seconds: float = 0.25,
    ) -> None:
        self.app = app
        self.breaker = breaker
        self.methods = methods
        self.path = path
        self.timeout_seconds = timeout_seconds

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] not in self.methods:
            await self.app(scope, receive, send)
            return
        if scope["path"].rstrip("/") != self.path:
            await self.app(scope, receive, send)
            return
        status = 500

        async def watch(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            if classify(exc) == Fault.INFRASTRUCTURE:
                await self._report()
            raise
        if status in INFRASTRUCTURE_STATUSES:
            await self._report()

    async def _report(self) -> None:
        try:
            async with asyncio.timeout(self.timeout_seconds):
                if await self.breaker.record_failure():
                    log.warning("circuit opened", extra={"breaker": self.breaker.name})
        except Exception as exc:  # noqa: BLE001 - never let reporting break the response
            log.warning(
                "could not record a failure",
                extra={"breaker": self.breaker.name, "error": repr(exc)},
            )


def report_failures_into_breaker(
    app,
    *,
    redis_url: str,
    name: str,
    path: str,
    methods: tuple[str, ...] = ("POST",),
    failure_threshold: int = 5,
    window_seconds: float = 10.0,
    open_seconds: float = 30.0,
) -> CircuitBreaker:
    """Make ``app`` count its own infrastructure failures on ``methods path`` into ``name``."""
    redis = Redis.from_url(redis_url, socket_timeout=0.25, socket_connect_timeout=0.25)
    breaker = CircuitBreaker(
        redis,
        name,
        failure_threshold=failure_threshold,
        window_seconds=window_seconds,
        open_seconds=open_seconds,
    )
    app.add_middleware(FailureReporter, breaker=breaker, methods=frozenset(methods), path=path)
    return breaker
