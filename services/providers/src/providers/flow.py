"""Routing one payment to a provider, with failover that never charges twice.

``route_payment`` is what the consumer runs for each ``payment.pending`` event. It is safe to
run again for the same payment (redelivery): the routing decision is written once, attempts are
remembered, and every provider call carries the payment id as its idempotency key. What to do
after each answer is ``providers.policy`` (pure); this module does the calls and the records.
"""

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from payplane_core.breaker import CircuitBreaker
from payplane_core.crypto import SecretBox
from payplane_core.db import autocommit
from payplane_core.telemetry import exemplar
from prometheus_client import Counter, Histogram
from redis.asyncio import Redis
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from providers import policy, provider_client, registry, routing
from providers.lease import Held, payment_lock
from providers.models import Attempt, Provider, Routing
from providers.platform import MerchantsClient, PaymentsClient
from providers.policy import CallOutcome, Next, Resolution

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


def breaker_for(deps: FlowDeps, provider: Provider) -> CircuitBreaker:
    return CircuitBreaker(
        deps.redis,
        f"{deps.breaker_prefix}{provider.name}",
        failure_threshold=provider.failure_threshold,
        window_seconds=deps.breaker_window_seconds,
        open_seconds=provider.open_seconds,
    )


async def route_payment(deps: FlowDeps, *, payment: dict[str, Any]) -> Routing:
    try:
        async with payment_lock(deps.redis, payment["id"]):
            return await _route_locked(deps, payment=payment)
    except Held:
        raise RetryLater("another worker is routing this payment") from None


async def _route_locked(deps: FlowDeps, *, payment: dict[str, Any]) -> Routing:
    async with autocommit(deps.engine) as conn:
        row = (await conn.execute(_ROUTING, {"payment_id": payment["id"]})).first()
    decided = Routing(**row._mapping) if row is not None else None
    if decided is None:
        decided = await _decide(deps, payment=payment)
    await _report_decision(deps, decided)
    return decided


async def _decide(deps: FlowDeps, *, payment: dict[str, Any]) -> Routing:
    payment_id = payment["id"]
    async with deps.sessions() as session:
        earlier = list(
            await session.scalars(
                select(Attempt).where(Attempt.payment_id == payment_id).order_by(Attempt.number)
            )
        )
        providers = {p.name: p for p in await registry.list_providers(session)}

    kept = policy.holder(earlier)
    if kept is not None:  # a worker died between the charge and the decision
        return await _decide_once(deps, payment_id, "accepted", kept, None)
    # An attempt whose result we never learned is settled before anyone else may charge.
    for attempt in policy.unsettled(earlier):
        provider = providers.get(attempt.provider)
        if provider is None:
            raise RetryLater(f"unknown attempt at unregistered provider {attempt.provider}")
        resolution, charge = await _cancel(deps, provider, payment_id)
        step = policy.after_cancel(resolution)
        if step is Next.WAIT:
            raise RetryLater(f"attempt at {provider.name} still unresolved")
        if step is Next.KEEP:
            await _finish_attempt(deps, attempt.id, state="accepted", charge=charge)
            return await _decide_once(deps, payment_id, "accepted", provider.name, None)
        await _finish_attempt(deps, attempt.id, state="canceled", error="canceled when settled")

    allowed = await deps.merchants.allowed_providers(payment["merchant_id"])
    candidates = routing.order(
        routing.eligible(providers.values(), currency=payment["currency"], allowed=allowed),
        payment_id=payment_id,
        unhealthy=deps.unhealthy,
    )
    if not candidates:
        return await _decide_once(deps, payment_id, "failed", None, "no_eligible_provider")
    number = len(earlier)
    for provider in candidates:
        breaker = breaker_for(deps, provider)
        state = await breaker.state()
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
        if await _attempt(deps, provider, breaker, payment=payment, number=number):
            return await _decide_once(deps, payment_id, "accepted", provider.name, None)
    return await _decide_once(deps, payment_id, "failed", None, "no_provider_accepted")


async def _attempt(
    deps: FlowDeps, provider: Provider, breaker: CircuitBreaker, *, payment: dict, number: int
) -> bool:
    """One provider, one try. True when the payment now belongs to this provider, False when
    it certainly was not charged there; ``RetryLater`` when that cannot be known yet."""
    payment_id = payment["id"]
    secrets = registry.secrets_of(provider, box=deps.box)
    attempt_id = await _start_attempt(deps, payment_id, provider.name, number)
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
    finish = {"http_status": outcome.http_status}
    if step is Next.CANCEL:
        resolution, charge = await _cancel(deps, provider, payment_id)
        step = policy.after_cancel(resolution)
        finish |= {"charge": charge, "error": f"{outcome.error}; cancel: {resolution.value}"}
    else:
        finish |= {"charge": outcome.charge, "error": outcome.error}
    asked_to_cancel = outcome.result is policy.Result.AMBIGUOUS
    if step is Next.KEEP:
        if not asked_to_cancel:
            await breaker.record_success()
        await _finish_attempt(deps, attempt_id, state="accepted", **finish)
        return True
    if step is Next.WAIT:
        await _finish_attempt(deps, attempt_id, state="unknown", **finish)
        await deps.payments.report(
            payment_id,
            type_="provider.attempt_unresolved",
            detail=_detail(provider, number, outcome, charged=None),
        )
        raise RetryLater(f"{provider.name}: {outcome.error}, and the cancel was not confirmed")
    state = "canceled" if asked_to_cancel else "failed"
    await _finish_attempt(deps, attempt_id, state=state, **finish)
    detail = _detail(provider, number, outcome, charged=False)
    if asked_to_cancel:
        detail["canceled"] = True
    await deps.payments.report(payment_id, type_="provider.attempt_failed", detail=detail)
    return False


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


# The bookkeeping below is one statement each, atomic on its own: autocommit connections (no
# BEGIN/COMMIT round trips) and plain SQL instead of ORM units of work on the hot path.
_ROUTING = text(
    "SELECT payment_id, outcome, provider, reason, decided_at FROM routings"
    " WHERE payment_id = :payment_id"
)
_START_ATTEMPT = text(
    "INSERT INTO attempts (payment_id, number, provider, state, started_at)"
    " VALUES (:payment_id, :number, :provider, 'sending', :started_at) RETURNING id"
)
_FINISH_ATTEMPT = text(
    "UPDATE attempts SET state = :state, error = :error, http_status = :http_status,"
    " charge_id = :charge_id, finished_at = :finished_at WHERE id = :id"
)
_DECIDE = text(
    "INSERT INTO routings (payment_id, outcome, provider, reason, decided_at)"
    " VALUES (:payment_id, :outcome, :provider, :reason, :decided_at)"
)
_ACCEPTED_ATTEMPT = text(
    """
    SELECT a.number, a.charge_id,
           (SELECT count(*) FROM attempts WHERE payment_id = :payment_id) AS attempts
    FROM (SELECT 1) AS one
    LEFT JOIN LATERAL (
        SELECT number, charge_id FROM attempts
        WHERE payment_id = :payment_id AND state = 'accepted' LIMIT 1
    ) AS a ON true
    """
)


async def _start_attempt(deps: FlowDeps, payment_id: str, provider: str, number: int) -> int:
    # Committed before the call: if this worker dies mid-call, the next one sees a "sending"
    # attempt and settles it with the provider before trying anyone else.
    async with autocommit(deps.engine) as conn:
        return await conn.scalar(
            _START_ATTEMPT,
            {
                "payment_id": payment_id,
                "number": number,
                "provider": provider,
                "started_at": datetime.now(UTC),
            },
        )


async def _finish_attempt(
    deps: FlowDeps,
    attempt_id: int,
    *,
    state: str,
    charge: dict | None = None,
    error: str | None = None,
    http_status: int | None = None,
) -> None:
    async with autocommit(deps.engine) as conn:
        await conn.execute(
            _FINISH_ATTEMPT,
            {
                "id": attempt_id,
                "state": state,
                "error": error,
                "http_status": http_status,
                "charge_id": (charge or {}).get("id"),
                "finished_at": datetime.now(UTC),
            },
        )


async def _decide_once(
    deps: FlowDeps, payment_id: str, outcome: str, provider: str | None, reason: str | None
) -> Routing:
    decided = Routing(
        payment_id=payment_id,
        outcome=outcome,
        provider=provider,
        reason=reason,
        decided_at=datetime.now(UTC),
    )
    async with autocommit(deps.engine) as conn:
        await conn.execute(
            _DECIDE,
            {
                "payment_id": payment_id,
                "outcome": outcome,
                "provider": provider,
                "reason": reason,
                "decided_at": decided.decided_at,
            },
        )
    ROUTED.labels(outcome).inc()
    return decided


async def _report_decision(deps: FlowDeps, decided: Routing) -> None:
    """Tell payments (again, after a redelivery: a repeated status is a no-op there)."""
    if decided.outcome == "accepted":
        async with autocommit(deps.engine) as conn:
            found = (
                await conn.execute(_ACCEPTED_ATTEMPT, {"payment_id": decided.payment_id})
            ).one()
        await deps.payments.report(
            decided.payment_id,
            type_="provider.accepted",
            status="processing",
            provider=decided.provider,
            detail={
                "provider": decided.provider,
                "attempt": found.number,
                "charge_id": found.charge_id,
                "attempts": found.attempts,
            },
        )
    else:
        await deps.payments.report(
            decided.payment_id,
            type_="routing.failed",
            status="failed",
            detail={"reason": decided.reason},
        )
