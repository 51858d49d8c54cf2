"""Reconciliation, the safety net (after Hyperswitch's payment sync and process tracker): every
payment reaches a final state even when an event, a routing or a provider callback got lost.

- ``pending`` longer than RECONCILE_PENDING_AFTER_SECONDS: nobody routed it, so the providers
  service is asked to route it (its idempotent flow: a payment is never charged twice).
- ``processing`` longer than RECONCILE_PROCESSING_AFTER_SECONDS: its status is fetched from its
  provider's charge-status API and a final outcome applied.
- a provider that cannot tell (unreachable, or no record of the charge) for
  RECONCILE_GIVE_UP_SECONDS: the payment fails, with the reason.

Each action is written to the timeline (source ``reconciler``) and counted in
``payplane_reconciliation_actions_total``. Replicas share the work safely: a payment is claimed
with ``FOR UPDATE SKIP LOCKED`` and its ``next_check_at`` pushed past a lease, as the relay
claims outbox rows. Time is the caller's ``now``, so the deadlines are testable.
"""

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from payplane_core.clock import Clock, utc_now
from payplane_core.db import driver_connection
from prometheus_client import Counter
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from payments import service
from payments.core.config import Settings
from payments.schemas import EventIn
from payments.state import IllegalTransition, Status
from payments.views import payment_json

log = logging.getLogger(__name__)
SOURCE = "reconciler"
FINAL_AT_PROVIDER = frozenset({"succeeded", "failed"})

ACTIONS = Counter(
    "payplane_reconciliation_actions_total",
    "Reconciler actions on unfinished payments, by action and result",
    ["action", "result"],
)


@dataclass(frozen=True)
class Policy:
    pending_after: timedelta
    processing_after: timedelta
    give_up_after: timedelta
    lease: timedelta
    backoff_base: timedelta
    backoff_max: timedelta
    batch_size: int

    @classmethod
    def from_settings(cls, settings: Settings) -> "Policy":
        return cls(
            pending_after=timedelta(seconds=settings.RECONCILE_PENDING_AFTER_SECONDS),
            processing_after=timedelta(seconds=settings.RECONCILE_PROCESSING_AFTER_SECONDS),
            give_up_after=timedelta(seconds=settings.RECONCILE_GIVE_UP_SECONDS),
            lease=timedelta(seconds=settings.RECONCILE_LEASE_SECONDS),
            backoff_base=timedelta(seconds=settings.RECONCILE_BACKOFF_BASE_SECONDS),
            backoff_max=timedelta(seconds=settings.RECONCILE_BACKOFF_MAX_SECONDS),
            batch_size=settings.RECONCILE_BATCH_SIZE,
        )

    def next_check(self, attempts: int, now: datetime) -> datetime:
        """After ``attempts`` checks: doubling waits up to the cap."""
        return now + min(self.backoff_max, self.backoff_base * 2 ** min(attempts, 20))


@dataclass(frozen=True)
class Claimed:
    payment_id: str
    attempts: int
    unreachable_since: datetime | None


@dataclass(frozen=True)
class Step:
    """What one check concluded: its metric result, a timeline event (maybe a status change),
    and since when the provider has been unable to tell us."""

    result: str
    event: EventIn | None
    unreachable_since: datetime | None = None


def _event(type_: str, detail: dict[str, Any], status: Status | None = None) -> EventIn:
    return EventIn(type=type_, status=status, source=SOURCE, detail=detail)


def after_sync(answer: dict[str, Any], claimed: Claimed, *, now: datetime, policy: Policy) -> Step:
    """The next step of a ``processing`` payment, from what its provider said (pure)."""
    provider = answer["provider"]
    charge = answer.get("charge") if answer.get("reachable") else None
    status = (charge or {}).get("status")
    if status in FINAL_AT_PROVIDER:
        detail = {
            "provider": provider,
            "charge_id": charge.get("id"),
            "charge_status": status,
            "failure_reason": charge.get("failure_reason"),
        }
        synced = _event("reconciliation.synced", detail, Status(status))
        # What the provider charged is compared with the payment (service.check_reporter).
        amount, currency = charge.get("amount"), charge.get("currency")
        if type(amount) is int and isinstance(currency, str):
            synced = synced.model_copy(update={"amount": amount, "currency": currency})
        return Step(status, synced)
    if charge is not None:  # still working on it there
        detail = {"provider": provider, "charge_status": status}
        return Step("still_processing", _event("reconciliation.checked", detail))
    # The provider cannot tell: unreachable, or it has no record of a charge it accepted.
    reason = "provider_unreachable" if not answer.get("reachable") else "charge_not_found"
    since = claimed.unreachable_since or now
    detail = {"provider": provider, "reason": reason, "error": answer.get("error")}
    if now - since >= policy.give_up_after:
        detail["since"] = since.isoformat()
        return Step("gave_up", _event("reconciliation.failed", detail, Status.FAILED), since)
    first = claimed.unreachable_since is None
    return Step(reason, _event("reconciliation.unresolved", detail) if first else None, since)


# -- the database ----------------------------------------------------------------------------
# One statement claims a batch: unfinished payments past their deadline whose next check is due,
# row-locked with SKIP LOCKED so replicas take different payments; the upsert's WHERE re-reads
# the latest check row, so a payment another replica just claimed is not claimed twice.
_CLAIM = text(
    """
    WITH due AS (
        SELECT p.id FROM payments p
        LEFT JOIN reconciliation_checks c ON c.payment_id = p.id
        WHERE p.status IN ('pending', 'processing')
          AND p.updated_at < CASE p.status WHEN 'pending' THEN CAST(:pending_before AS timestamptz)
                                           ELSE CAST(:processing_before AS timestamptz) END
          AND (c.next_check_at IS NULL OR c.next_check_at <= :now)
        ORDER BY p.updated_at
        LIMIT :limit
        FOR UPDATE OF p SKIP LOCKED
    )
    INSERT INTO reconciliation_checks AS c (payment_id, attempts, next_check_at)
    SELECT id, 0, :lease_until FROM due
    ON CONFLICT (payment_id) DO UPDATE SET next_check_at = EXCLUDED.next_check_at
        WHERE c.next_check_at <= :now
    RETURNING c.payment_id, c.attempts, c.unreachable_since
    """
)
_SAVE = text(
    "UPDATE reconciliation_checks SET attempts = attempts + 1, next_check_at = :next_check_at,"
    " unreachable_since = :unreachable_since, last_result = :result WHERE payment_id = :id"
)


async def claim(engine: AsyncEngine, *, now: datetime, policy: Policy) -> list[Claimed]:
    async with engine.begin() as conn:
        rows = await conn.execute(
            _CLAIM,
            {
                "now": now,
                "pending_before": now - policy.pending_after,
                "processing_before": now - policy.processing_after,
                "limit": policy.batch_size,
                "lease_until": now + policy.lease,
            },
        )
        return [Claimed(*row) for row in rows]


@dataclass
class Reconciler:
    engine: AsyncEngine
    sessions: async_sessionmaker
    providers: httpx.AsyncClient  # internally signed, to the providers service
    policy: Policy
    concurrency: int = 4
    clock: Clock = utc_now  # stamps what it records; the pass's ``now`` only picks the work

    async def run_once(self, *, now: datetime) -> int:
        """Claim one batch and check each payment; returns how many were claimed."""
        claimed = await claim(self.engine, now=now, policy=self.policy)
        limit = asyncio.Semaphore(self.concurrency)

        async def bounded(item: Claimed) -> None:
            async with limit:
                try:
                    await self.check(item, now=now)
                except Exception:  # one payment's trouble never stops the others
                    log.exception("reconciliation failed", extra={"payment_id": item.payment_id})

        await asyncio.gather(*(bounded(item) for item in claimed))
        return len(claimed)

    async def check(self, claimed: Claimed, *, now: datetime) -> None:
        async with self.sessions() as session:
            payment = await service.get_payment(
                session, payment_id=claimed.payment_id, merchant_id=None
            )
            payment = payment_json(payment)
        if payment["status"] == Status.PENDING:
            step = await self._route(payment, claimed)
            action = "reroute"
        elif payment["status"] == Status.PROCESSING and payment["provider"]:
            answer = await self._charge_status(payment)
            step = (
                after_sync(answer, claimed, now=now, policy=self.policy)
                if answer is not None
                else Step("providers_unavailable", None, claimed.unreachable_since)
            )
            action = "sync"
        else:
            return  # finished meanwhile: nothing to do
        if step.event is not None:
            step = await self._record(claimed.payment_id, step)
        ACTIONS.labels(action, step.result).inc()
        async with self.engine.begin() as conn:
            await conn.execute(
                _SAVE,
                {
                    "id": claimed.payment_id,
                    "next_check_at": self.policy.next_check(claimed.attempts, now),
                    "unreachable_since": step.unreachable_since,
                    "result": step.result,
                },
            )

    async def _route(self, payment: dict[str, Any], claimed: Claimed) -> Step:
        """Recorded before asking, so the timeline shows why the routing that follows happened."""
        event = _event("reconciliation.reroute", {"attempt": claimed.attempts + 1})
        await self._record(payment["id"], Step("rerouting", event))
        try:
            response = await self.providers.post(
                f"/internal/v1/payments/{payment['id']}/route", json=payment
            )
        except httpx.HTTPError:
            return Step("providers_unavailable", None)
        if not response.is_success:
            return Step("providers_unavailable", None)
        return Step(f"routed_{response.json()['outcome']}", None)

    async def _charge_status(self, payment: dict[str, Any]) -> dict[str, Any] | None:
        """The providers service's answer, None when that service itself is unavailable (which
        says nothing about the provider, so it never counts towards giving up)."""
        try:
            response = await self.providers.get(
                f"/internal/v1/payments/{payment['id']}/charge",
                params={"provider": payment["provider"]},
            )
        except httpx.HTTPError:
            return None
        return response.json() if response.is_success else None

    async def _record(self, payment_id: str, step: Step) -> Step:
        try:
            async with driver_connection(self.engine) as conn:
                await service.record_event(
                    conn, payment_id=payment_id, event=step.event, headers={}, at=self.clock()
                )
        except IllegalTransition as exc:  # a callback finished it meanwhile, differently
            log.warning("reconciliation outcome refused", extra={"payment_id": payment_id})
            return Step(f"conflict_{exc.current.value}", None, step.unreachable_since)
        except service.ChargeMismatch:  # never applied: for a human to look at
            log.error("provider's charge is not the payment's", extra={"payment_id": payment_id})
            return Step("charge_mismatch", None, step.unreachable_since)
        return step


async def run_forever(reconciler: Reconciler, *, interval: float) -> None:
    """Until cancelled: a full batch loops at once, otherwise wait ``interval``."""
    while True:
        try:
            claimed = await reconciler.run_once(now=reconciler.clock())
        except Exception:
            log.exception("reconciliation pass failed")
            claimed = 0
        if claimed < reconciler.policy.batch_size:
            await asyncio.sleep(interval)
