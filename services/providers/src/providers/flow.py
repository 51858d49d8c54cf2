"""Routing one payment to a provider, with failover that never charges twice.

``route_payment`` is what the consumer runs for each ``payment.pending`` event. It is safe to
run again for the same payment (redelivery): the routing decision is written once, attempts are
remembered, and every provider call carries the payment id as its idempotency key. What to do
after each answer is ``providers.policy`` (pure); this module does the calls and the records.
"""

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from payplane_core.breaker import CircuitBreaker
from payplane_core.crypto import SecretBox
from payplane_core.telemetry import exemplar
from prometheus_client import Counter, Histogram
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from providers import policy, provider_client, records, registry, routing
from providers.lease import Held, Lease, payment_lock
from providers.models import Provider, Routing
from providers.platform import MerchantsClient, PaymentsClient
from providers.policy import CallOutcome, Next, Resolution
from providers.prefetch import Prefetch
from providers.records import Accepted, Earlier

log = logging.getLogger(__name__)

ATTEMPTS = Counter(
    "payplane_provider_attempts_total",
    "Charge attempts by provider and result",
    ["provider", "result"],
)
ROUTED = Counter("payplane_payments_routed_total", "Routing decisions", ["outcome"])
ATTEMPT_SECONDS = Histogram(
    "payplane_provider_attempt_duration_seconds",
    "Charge attempt latency by provider and result",
    ["provider", "result"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


# The decision, and for an accepted one what its report says about the attempts.
Decided = tuple[Routing, Accepted | None]


class RetryLater(Exception):
    """The payment cannot be settled now; its message goes back to the queue."""


@dataclass
class FlowDeps:
    engine: AsyncEngine
    sessions: async_sessionmaker
    redis: Redis
    http: httpx.AsyncClient  # to providers
    payments: PaymentsClient
    merchants: MerchantsClient
    box: SecretBox
    breaker_prefix: str
    breaker_window_seconds: float
    unhealthy: set[str]
    health: dict[str, bool]
    provider_cache: registry.ProviderCache = field(default_factory=registry.ProviderCache)
    breakers: dict[tuple, CircuitBreaker] = field(default_factory=dict)  # see breaker_for


_MAX_BREAKERS = 1000


def breaker_for(deps: FlowDeps, provider: Provider) -> CircuitBreaker:
    """One per provider and settings, made once: a breaker holds no state of its own (that is
    in Redis), and making one registers its Lua scripts (hashing them) every time."""
    key = (provider.name, provider.failure_threshold, provider.open_seconds)
    breaker = deps.breakers.get(key)
    if breaker is None:
        if len(deps.breakers) >= _MAX_BREAKERS:  # settings changed many times: start afresh
            deps.breakers.clear()
        breaker = deps.breakers[key] = CircuitBreaker(
            deps.redis,
            f"{deps.breaker_prefix}{provider.name}",
            failure_threshold=provider.failure_threshold,
            window_seconds=deps.breaker_window_seconds,
            open_seconds=provider.open_seconds,
        )
    return breaker


@dataclass
class _Visit:
    """One routing of one payment: its lock, and what was read from Redis with it."""

    lease: Lease
    ahead: Prefetch


async def route_payment(deps: FlowDeps, *, payment: dict[str, Any]) -> Routing:
    ahead = _prefetch(deps, payment)
    try:
        async with payment_lock(deps.redis, payment["id"], reads=ahead.queue) as lease:
            ahead.take(lease.read)
            return await _route_locked(deps, _Visit(lease, ahead), payment=payment)
    except Held:
        raise RetryLater("another worker is routing this payment") from None


def _prefetch(deps: FlowDeps, payment: dict[str, Any]) -> Prefetch:
    """The merchant's settings version, and the breaker of the provider likely to be asked
    first, as far as this process knows (``providers.prefetch``)."""
    likely = routing.order(
        routing.eligible(
            deps.provider_cache.last_read().values(), currency=payment["currency"], allowed=None
        ),
        payment_id=payment["id"],
        unhealthy=deps.unhealthy,
    )
    return Prefetch(
        deps.merchants.version_key(payment["merchant_id"]),
        [breaker_for(deps, provider) for provider in likely[:1]],
    )


async def _route_locked(deps: FlowDeps, visit: _Visit, *, payment: dict[str, Any]) -> Routing:
    found = await records.find(deps.engine, payment["id"])
    if found.routing is not None:  # redelivered: decided before, reported again
        decided, accepted = found.routing, found.accepted()
    else:
        decided, accepted = await _decide(deps, visit, payment=payment, found=found)
    await _report_decision(deps, decided, accepted)
    return decided


async def _decide(
    deps: FlowDeps, visit: _Visit, *, payment: dict[str, Any], found: records.Found
) -> Decided:
    payment_id = payment["id"]
    earlier = found.attempts
    providers = await deps.provider_cache.get(deps.engine, found.providers_digest)
    kept = policy.holder(earlier)
    if kept is not None:  # a worker died between the charge and the decision
        return await _accept(deps, payment_id, kept, found.accepted(), finished=None)
    settled = await _settle_unsettled(deps, visit, providers, earlier, payment_id)
    if settled is not None:
        return settled

    allowed = await deps.merchants.allowed_providers(
        payment["merchant_id"], version=visit.ahead.version
    )
    candidates = routing.order(
        routing.eligible(providers.values(), currency=payment["currency"], allowed=allowed),
        payment_id=payment_id,
        unhealthy=deps.unhealthy,
    )
    if not candidates:
        return await _fail(deps, payment_id, "no_eligible_provider")
    number = len(earlier)
    for provider in candidates:
        breaker = breaker_for(deps, provider)
        state = await visit.ahead.state(breaker)
        if state.open:
            ATTEMPTS.labels(provider.name, "circuit_open").inc()
            await deps.payments.report(
                payment_id,
                type_="provider.skipped",
                detail={
                    "provider": provider.name,
                    "reason": "circuit_open",
                    "retry_after_seconds": round(state.retry_after_seconds, 1),
                },
            )
            continue
        number += 1
        visit.ahead.provider_called()
        finished = await _attempt(deps, visit, provider, breaker, payment=payment, number=number)
        if finished is not None:
            accepted = Accepted(number, finished["charge_id"], attempts=number)
            return await _accept(deps, payment_id, provider.name, accepted, finished)
    return await _fail(deps, payment_id, "no_provider_accepted")


async def _settle_unsettled(
    deps: FlowDeps,
    visit: _Visit,
    providers: dict[str, Provider],
    earlier: list[Earlier],
    payment_id: str,
) -> Decided | None:
    """An attempt whose result we never learned is settled before anyone else may charge:
    the decision when one of them charged, None when none did."""
    for attempt in policy.unsettled(earlier):
        provider = providers.get(attempt.provider)
        if provider is None:
            raise RetryLater(f"unknown attempt at unregistered provider {attempt.provider}")
        visit.ahead.provider_called()
        resolution, charge = await _cancel(deps, provider, payment_id)
        step = policy.after_cancel(resolution)
        if step is Next.WAIT:
            raise RetryLater(f"attempt at {provider.name} still unresolved")
        if step is Next.KEEP:
            finished = records.finish(attempt.id, state="accepted", charge=charge)
            accepted = Accepted(attempt.number, finished["charge_id"], attempts=len(earlier))
            return await _accept(deps, payment_id, provider.name, accepted, finished)
        canceled = records.finish(attempt.id, state="canceled", error="canceled when settled")
        await records.finish_attempt(deps.engine, canceled)
    return None


async def _attempt(
    deps: FlowDeps,
    visit: _Visit,
    provider: Provider,
    breaker: CircuitBreaker,
    *,
    payment: dict,
    number: int,
) -> dict | None:
    """One provider, one try. When the payment now belongs to this provider: how to finish
    its attempt (``records.finish``; written with the decision, in one statement). None when
    it certainly was not charged there; ``RetryLater`` when that cannot be known yet."""
    payment_id = payment["id"]
    secrets = registry.secrets_of(provider, box=deps.box)
    attempt_id = await records.start_attempt(deps.engine, payment_id, provider.name, number)
    started = time.perf_counter()
    outcome = await provider_client.charge(
        deps.http,
        endpoint=provider.endpoint,
        api_key=secrets.api_key,
        payment=payment,
        timeout_seconds=provider.timeout_ms / 1000,
    )
    ATTEMPTS.labels(provider.name, outcome.result.value).inc()
    ATTEMPT_SECONDS.labels(provider.name, outcome.result.value).observe(
        time.perf_counter() - started, exemplar=exemplar()
    )
    if policy.counts_against_provider(outcome):
        if await breaker.record_failure():
            log.warning("provider circuit opened", extra={"provider": provider.name})
    step = policy.after_charge(outcome)
    finish: dict[str, Any] = {"http_status": outcome.http_status}
    if step is Next.CANCEL:
        resolution, charge = await _cancel(deps, provider, payment_id)
        step = policy.after_cancel(resolution)
        finish |= {"charge": charge, "error": f"{outcome.error}; cancel: {resolution.value}"}
    else:
        finish |= {"charge": outcome.charge, "error": outcome.error}
    asked_to_cancel = outcome.result is policy.Result.AMBIGUOUS
    if step is Next.KEEP:
        if not asked_to_cancel:  # recorded with the unlock, also if the routing fails later
            visit.lease.release_with(breaker.success_call(), breaker.success_recorded)
        return records.finish(attempt_id, state="accepted", **finish)
    if step is Next.WAIT:
        await records.finish_attempt(
            deps.engine, records.finish(attempt_id, state="unknown", **finish)
        )
        await deps.payments.report(
            payment_id,
            type_="provider.attempt_unresolved",
            detail=_detail(provider, number, outcome, charged=None),
        )
        raise RetryLater(f"{provider.name}: {outcome.error}, and the cancel was not confirmed")
    state = "canceled" if asked_to_cancel else "failed"
    await records.finish_attempt(deps.engine, records.finish(attempt_id, state=state, **finish))
    detail = _detail(provider, number, outcome, charged=False)
    if asked_to_cancel:
        detail["canceled"] = True
    await deps.payments.report(payment_id, type_="provider.attempt_failed", detail=detail)
    return None


def _detail(provider: Provider, number: int, outcome: CallOutcome, *, charged: bool | None) -> dict:
    return {
        "provider": provider.name,
        "attempt": number,
        "result": outcome.result.value,
        "http_status": outcome.http_status,
        "error": outcome.error,
        "charged": charged,
    }


async def _cancel(
    deps: FlowDeps, provider: Provider, payment_id: str
) -> tuple[Resolution, dict | None]:
    secrets = registry.secrets_of(provider, box=deps.box)
    return await provider_client.cancel(
        deps.http,
        endpoint=provider.endpoint,
        api_key=secrets.api_key,
        payment_id=payment_id,
        timeout_seconds=provider.timeout_ms / 1000,
    )


async def _accept(
    deps: FlowDeps, payment_id: str, provider: str, accepted: Accepted, finished: dict | None
) -> Decided:
    """The payment stays with ``provider``; ``finished``: its attempt, when not yet recorded as
    accepted (written with the decision, in one statement)."""
    decided = _decision(payment_id, "accepted", provider=provider)
    await records.decide(deps.engine, decided, finished=finished)
    ROUTED.labels("accepted").inc()
    return decided, accepted  # what the report needs: not read back


async def _fail(deps: FlowDeps, payment_id: str, reason: str) -> Decided:
    decided = _decision(payment_id, "failed", reason=reason)
    await records.decide(deps.engine, decided)
    ROUTED.labels("failed").inc()
    return decided, None


def _decision(
    payment_id: str, outcome: str, *, provider: str | None = None, reason: str | None = None
) -> Routing:
    return Routing(
        payment_id=payment_id,
        outcome=outcome,
        provider=provider,
        reason=reason,
        decided_at=datetime.now(UTC),
    )


async def _report_decision(deps: FlowDeps, decided: Routing, accepted: Accepted | None) -> None:
    """Tell payments (again, after a redelivery: a repeated status is a no-op there)."""
    if decided.outcome == "accepted":
        assert accepted is not None
        await deps.payments.report(
            decided.payment_id,
            type_="provider.accepted",
            status="processing",
            provider=decided.provider,
            detail={
                "provider": decided.provider,
                "attempt": accepted.number,
                "charge_id": accepted.charge_id,
                "attempts": accepted.attempts,
            },
        )
    else:
        await deps.payments.report(
            decided.payment_id,
            type_="routing.failed",
            status="failed",
            detail={"reason": decided.reason},
        )
