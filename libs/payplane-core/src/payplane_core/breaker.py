"""A circuit breaker kept in Redis, so every replica sees (and trips) the same circuit.

States (the usual closed -> open -> half-open cycle of pybreaker, resilience4j, Envoy's outlier
ejection), for a breaker named ``cb:payments``:

- **closed**: ``cb:payments:failures`` counts failures in a fixed window (it expires
  ``window_seconds`` after its first failure); ``failure_threshold`` of them in one window open
  the circuit.
- **open**: ``cb:payments:open`` exists; its TTL is the time left (``Retry-After``). The first
  open period is ``min_open_seconds``; every failed probe doubles it, up to ``open_seconds``.
- **half-open**: the open key has expired but ``cb:payments:tripped`` (the last open period,
  kept for the backoff) still exists. Callers that admit traffic (the gateway's admission
  script) let ONE probe through at a time by setting ``cb:payments:probe`` with a lease TTL, so
  a probe whose outcome is never reported is retried once the lease ends. The gateway marks
  that request as the probe (a header under its internal signature, ``internal_auth.PROBE``);
  the probe's success closes the circuit; a failure re-opens it with the doubled period.

If nothing probes for ``open_seconds`` after the open period, ``tripped`` expires and the
circuit is closed again (no traffic, no harm). Failures are counted with or without successes
in between (a flapping dependency still trips); callers that want "consecutive failures"
semantics call ``record_success()``, which clears the count. Each operation is one atomic
Lua script or MULTI, one round trip; ``read_state`` and ``success_call`` hand the same reads and
script to a caller that sends them in a round trip it makes anyway (providers: with its routing
lock and its unlock).
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Gauge
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from payplane_core.dberrors import Fault, classify
from payplane_core.internal_auth import verified_identity
from payplane_core.problems import retry_after
from payplane_core.scripts import ScriptCall

log = logging.getLogger(__name__)

OPEN = Gauge(
    "payplane_breaker_open",
    "1 while the circuit breaker is open or half-open (not yet closed by a probe), "
    "as last seen by this process",
    ["breaker"],
)
HALF_OPEN = Gauge(
    "payplane_breaker_half_open",
    "1 while the circuit breaker is half-open (probing), as last seen by this process",
    ["breaker"],
)
REPORTS = Counter(
    "payplane_breaker_reports_total",
    "Requests a service's FailureReporter has settled, by what it reported into the breaker",
    ["breaker", "report"],  # failure, probe_success, probe_released, none
)


def observe(name: str, is_open: bool, half_open: bool = False) -> None:
    """Record what a check of breaker ``name`` saw (scripts that check it inline call this)."""
    OPEN.labels(name).set(1 if is_open or half_open else 0)
    HALF_OPEN.labels(name).set(1 if half_open else 0)


# KEYS: failures, open, tripped, probe. ARGV: threshold, window ms, min open ms, max open ms.
# Returns 1 when this call opened (or re-opened) the circuit. While open, late failures of
# requests admitted before it opened change nothing; in half-open any failure re-opens it.
_RECORD_FAILURE = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local last = tonumber(redis.call('GET', KEYS[3]))
local open_ms
if last then
  open_ms = math.min(last * 2, tonumber(ARGV[4]))
else
  local n = redis.call('INCR', KEYS[1])
  if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
  if n < tonumber(ARGV[1]) then return 0 end
  open_ms = tonumber(ARGV[3])
end
redis.call('SET', KEYS[2], '1', 'PX', open_ms)
redis.call('SET', KEYS[3], open_ms, 'PX', open_ms + tonumber(ARGV[4]))
redis.call('DEL', KEYS[1], KEYS[4])
return 1
"""

# KEYS: failures, open, tripped, probe. ARGV: clear the failure count ('1'/'0').
# Returns 1 when this success closed a half-open circuit. A success while still open is a
# request admitted before it opened: it proves little, so it changes nothing.
_RECORD_SUCCESS = """
if redis.call('EXISTS', KEYS[3]) == 1 then
  if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
  redis.call('DEL', KEYS[1], KEYS[3], KEYS[4])
  return 1
end
if ARGV[1] == '1' then redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True, slots=True)
class BreakerState:
    open: bool
    retry_after_seconds: float  # 0 unless open
    half_open: bool = False  # open period over, waiting for a probe's success

    @property
    def retry_after_header(self) -> str:
        """Whole seconds, at least 1, as ``Retry-After`` wants."""
        return retry_after(self.retry_after_seconds)


def open_key(name: str) -> str:
    """The key that exists while breaker ``name`` is open (for scripts that check it inline)."""
    return f"{name}:open"


def tripped_key(name: str) -> str:
    """The key that exists from opening until a probe closes it (half-open once ``open`` ends)."""
    return f"{name}:tripped"


def probe_key(name: str) -> str:
    """The lease of the one probe in flight while half-open."""
    return f"{name}:probe"


class CircuitBreaker:
    def __init__(
        self,
        redis: Redis,
        name: str,
        *,
        failure_threshold: int = 5,
        window_seconds: float = 10.0,
        open_seconds: float = 30.0,
        min_open_seconds: float | None = None,
    ) -> None:
        """``min_open_seconds`` (default: ``open_seconds``) is the first open period; each
        failed probe doubles it up to ``open_seconds``."""
        first = open_seconds if min_open_seconds is None else min_open_seconds
        if failure_threshold < 1 or window_seconds <= 0 or not 0 < first <= open_seconds:
            raise ValueError("threshold, window and open times must be positive, min <= max")
        self.redis = redis
        self.name = name
        self.failure_threshold = failure_threshold
        self.window_ms = int(window_seconds * 1000)
        self.min_open_ms = max(1, int(first * 1000))
        self.open_ms = int(open_seconds * 1000)
        self.failures_key = f"{name}:failures"
        self.open_key = open_key(name)
        self.tripped_key = tripped_key(name)
        self.probe_key = probe_key(name)
        self._keys = [self.failures_key, self.open_key, self.tripped_key, self.probe_key]
        self._record_failure = redis.register_script(_RECORD_FAILURE)
        self._record_success = redis.register_script(_RECORD_SUCCESS)

    async def record_failure(self) -> bool:
        """Count one failure; True if it is the one that opened (or re-opened) the circuit."""
        opened = await self._record_failure(
            keys=self._keys,
            args=[self.failure_threshold, self.window_ms, self.min_open_ms, self.open_ms],
        )
        if opened:
            observe(self.name, True)
        return bool(opened)

    async def record_success(self, *, clear_failures: bool = True) -> bool:
        """A success: closes a half-open circuit (True when it did). ``clear_failures=False``
        keeps the closed circuit's count (failures need not be consecutive to trip it)."""
        call = self.success_call(clear_failures=clear_failures)
        return self.success_recorded(await call.run(self.redis))

    def success_call(self, *, clear_failures: bool = True) -> ScriptCall:
        """``record_success`` as a script call, for a caller that sends it in a round trip it
        makes anyway (``scripts.run_together``); hand its result to ``success_recorded``."""
        return ScriptCall(self._record_success, self._keys, [int(clear_failures)])

    def success_recorded(self, closed: Any) -> bool:
        if closed:
            observe(self.name, False)
        return bool(closed)

    async def release_probe(self) -> None:
        """The probe ended without a verdict (say a 4xx): let the next request probe now."""
        await self.redis.delete(self.probe_key)

    async def state(self) -> BreakerState:
        async with self.redis.pipeline(transaction=True) as pipe:
            self.read_state(pipe)
            return self.state_from(*await pipe.execute())

    def read_state(self, pipe: Pipeline) -> None:
        """Queue the two reads ``state`` makes, for a caller that reads more in the same round
        trip (in a MULTI, so that they are one snapshot); their replies go to ``state_from``."""
        pipe.pttl(self.open_key).exists(self.tripped_key)

    def state_from(self, remaining_ms: int | None, tripped: int) -> BreakerState:
        if remaining_ms is not None and remaining_ms > 0:
            observe(self.name, True)
            return BreakerState(open=True, retry_after_seconds=remaining_ms / 1000)
        observe(self.name, False, half_open=bool(tripped))
        return BreakerState(open=False, retry_after_seconds=0.0, half_open=bool(tripped))

    async def is_open(self) -> bool:
        return (await self.state()).open

    async def reset(self) -> None:
        """Close the circuit now (operators, tests)."""
        await self.redis.delete(*self._keys)


INFRASTRUCTURE_STATUSES = frozenset({502, 503, 504})


class FailureReporter:
    """ASGI middleware: a service reports its own failures on one path into a breaker.

    Only infrastructure failures count: a 502, 503 or 504 on a request whose method and path
    match (services answer 503 only when a dependency is down, timed out or saturated, see
    ``payplane_core.dberrors``), or an escaping exception classified as infrastructure. They are
    reported for every request, since they are what opens the circuit. A 500 is a bug that one
    merchant's input may be able to trigger, so it never opens the shared circuit (it is logged
    and alerted on instead).

    Any other outcome is reported only for the probe: the request the gateway admitted while
    half-open and marked in its signed headers (``InternalIdentity.probe``, as verified by the
    route's signature check; an unsigned or forged mark is refused there, never seen here). Its
    success (< 400) closes the circuit; a refused input or a bug (no verdict on the dependency)
    frees the probe lease so one merchant's bad requests cannot hold the circuit half-open. Any
    other request's success or refusal says nothing the breaker needs, so it costs no Redis
    call. Reporting never changes the response: if Redis itself is unreachable the failure is
    logged and dropped, bounded by ``timeout_seconds``.
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
            infrastructure = classify(exc) == Fault.INFRASTRUCTURE
            await self._report(scope, failed=infrastructure, succeeded=False)
            raise
        await self._report(scope, failed=status in INFRASTRUCTURE_STATUSES, succeeded=status < 400)

    async def _report(self, scope, *, failed: bool, succeeded: bool) -> None:
        if failed:
            report = "failure"
            await self._bounded(self._failed)
        elif _is_probe(scope):  # only the probe's verdict carries information
            report = "probe_success" if succeeded else "probe_released"
            await self._bounded(self._succeeded if succeeded else self.breaker.release_probe)
        else:
            report = "none"
        REPORTS.labels(self.breaker.name, report).inc()

    async def _failed(self) -> None:
        if await self.breaker.record_failure():
            log.warning("circuit opened", extra={"breaker": self.breaker.name})

    async def _succeeded(self) -> None:
        # Not clear_failures: failures with successes in between (flapping) must still trip.
        if await self.breaker.record_success(clear_failures=False):
            log.info("circuit closed by a probe", extra={"breaker": self.breaker.name})

    async def _bounded(self, outcome: Callable[[], Awaitable[None]]) -> None:
        try:
            async with asyncio.timeout(self.timeout_seconds):
                await outcome()
        except Exception as exc:  # noqa: BLE001 - never let reporting break the response
            log.warning(
                "could not report to the breaker",
                extra={"breaker": self.breaker.name, "error": repr(exc)},
            )


def _is_probe(scope) -> bool:
    identity = verified_identity(scope)
    return identity is not None and identity.probe


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
    min_open_seconds: float | None = None,
) -> CircuitBreaker:
    """Make ``app`` count its own infrastructure failures on ``methods path`` into ``name``."""
    redis = Redis.from_url(redis_url, socket_timeout=0.25, socket_connect_timeout=0.25)
    breaker = CircuitBreaker(
        redis,
        name,
        failure_threshold=failure_threshold,
        window_seconds=window_seconds,
        open_seconds=open_seconds,
        min_open_seconds=min_open_seconds,
    )
    app.add_middleware(FailureReporter, breaker=breaker, methods=frozenset(methods), path=path)
    return breaker
