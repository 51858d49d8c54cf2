"""Deliveries in the notifier database: accept, claim, record. Plain keyword-only functions.

Ownership of a delivery is a lease: whoever claims it sets ``locked_until`` (and pushes
``next_attempt_at`` to the same instant, so the retry loop does not see it as due). The lease
value is also the claim's token: an attempt's outcome changes the delivery only if the token
still matches, so a notifier that lost its lease records its attempt but cannot overwrite the
state set by the one that took over. Times come from the database clock.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from payplane_core.ids import has_prefix, new_id
from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from workers.notifier.models import Delivery, DeliveryAttempt


@dataclass(frozen=True, slots=True)
class IncomingEvent:
    event_id: str
    merchant_id: str
    payment_id: str
    event_type: str
    body: str
    trace: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Claim:
    """A delivery we hold, and the lease that proves it."""

    delivery: Delivery
    lease: datetime


@dataclass(frozen=True, slots=True)
class AttemptOutcome:
    url: str | None
    started_at: datetime
    latency_ms: int
    status_code: int | None
    error: str | None

    @property
    def succeeded(self) -> bool:
        return self.error is None and self.status_code is not None and 200 <= self.status_code < 300


def _lease_end(seconds: float):
    return func.now() + func.make_interval(0, 0, 0, 0, 0, 0, seconds)


async def accept_event(
    sessions: async_sessionmaker, *, event: IncomingEvent, lease_seconds: float
) -> Claim | None:
    """Create the delivery already claimed by us; None if this event is already known.

    A known event is someone else's business (delivered, failed, or pending with the retry
    loop): the caller acks the message without sending anything.
    """
    async with sessions.begin() as session:
        created = await session.scalar(
            pg_insert(Delivery)
            .values(
                id=new_id("dlv"),
                event_id=event.event_id,
                merchant_id=event.merchant_id,
                payment_id=event.payment_id,
                event_type=event.event_type,
                body=event.body,
                trace=event.trace,
                state="pending",
                attempts=0,
                next_attempt_at=_lease_end(lease_seconds),
                locked_until=_lease_end(lease_seconds),
                created_at=func.now(),
                updated_at=func.now(),
            )
            .on_conflict_do_nothing(index_elements=[Delivery.event_id])
            .returning(Delivery)
        )
    return Claim(created, created.locked_until) if created is not None else None


async def claim_due(
    sessions: async_sessionmaker, *, batch: int, lease_seconds: float
) -> list[Claim]:
    """Pending deliveries whose next attempt is due (or whose notifier died), claimed by us."""
    due = (
        select(Delivery.id)
        .where(Delivery.state == "pending", Delivery.next_attempt_at <= func.now())
        .order_by(Delivery.next_attempt_at)
        .limit(batch)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    async with sessions.begin() as session:
        rows = await session.scalars(
            update(Delivery)
            .where(Delivery.id.in_(due))
            .values(
                next_attempt_at=_lease_end(lease_seconds), locked_until=_lease_end(lease_seconds)
            )
            .returning(Delivery)
        )
        return [Claim(d, d.locked_until) for d in rows]


async def claim_for_redelivery(
    sessions: async_sessionmaker, *, delivery_id: str, lease_seconds: float
) -> Claim | None:
    """A finished (failed or delivered) delivery that nobody is working on, claimed by us."""
    async with sessions.begin() as session:
        delivery = await session.scalar(
            update(Delivery)
            .where(
                Delivery.id == delivery_id,
                Delivery.state.in_(("failed", "delivered")),
                (Delivery.locked_until.is_(None)) | (Delivery.locked_until < func.now()),
            )
            .values(locked_until=_lease_end(lease_seconds))
            .returning(Delivery)
        )
    return Claim(delivery, delivery.locked_until) if delivery is not None else None


def next_state(
    *, attempts_before: int, succeeded: bool, manual: bool, schedule: list[float]
) -> tuple[str, float | None]:
    """The state after an attempt, and for a retry how many seconds to wait."""
    if succeeded:
        return "delivered", None
    if manual:
        return "failed", None  # a hand-made redelivery is one attempt, not a new schedule
    failures = attempts_before + 1
    if failures <= len(schedule):
        return "pending", schedule[failures - 1]
    return "failed", None


async def record_attempt(
    sessions: async_sessionmaker,
    *,
    claim: Claim,
    outcome: AttemptOutcome,
    manual: bool,
    schedule: list[float],
) -> Delivery:
    """Store the attempt and (if our lease still holds) the delivery's new state, atomically."""
    delivery = claim.delivery
    state, wait = next_state(
        attempts_before=delivery.attempts,
        succeeded=outcome.succeeded,
        manual=manual,
        schedule=schedule,
    )
    changes: dict[str, Any] = {
        "state": state,
        "attempts": Delivery.attempts + 1,
        "locked_until": None,
        "last_status": outcome.status_code,
        "last_error": outcome.error,
        "updated_at": func.now(),
    }
    if state == "delivered":
        changes["delivered_at"] = func.now()
    if wait is not None:
        changes["next_attempt_at"] = _lease_end(wait)
    async with sessions.begin() as session:
        updated = await session.scalar(
            update(Delivery)
            .where(Delivery.id == delivery.id, Delivery.locked_until == claim.lease)
            .values(**changes)
            .returning(Delivery)
        )
        current = updated or await session.get(Delivery, delivery.id)
        number = (
            await session.scalar(
                select(func.count()).where(DeliveryAttempt.delivery_id == delivery.id)
            )
        ) + 1
        await session.execute(
            insert(DeliveryAttempt).values(
                delivery_id=delivery.id,
                number=number,
                trigger="manual" if manual else "automatic",
                url=outcome.url,
                started_at=outcome.started_at,
                latency_ms=outcome.latency_ms,
                status_code=outcome.status_code,
                succeeded=outcome.succeeded,
                error=outcome.error,
                resulting_state=current.state,
            )
        )
    return current


async def find_delivery(session: AsyncSession, *, ident: str) -> Delivery | None:
    """By delivery id (``dlv_…``) or by event id (``evt_…``, the ``webhook-id``)."""
    column = Delivery.event_id if has_prefix(ident, "evt") else Delivery.id
    return await session.scalar(select(Delivery).where(column == ident))


async def attempts_of(session: AsyncSession, *, delivery_id: str) -> list[DeliveryAttempt]:
    query = (
        select(DeliveryAttempt)
        .where(DeliveryAttempt.delivery_id == delivery_id)
        .order_by(DeliveryAttempt.id)
    )
    return list(await session.scalars(query))


async def list_deliveries(
    session: AsyncSession,
    *,
    state: str | None,
    merchant_id: str | None,
    limit: int,
    starting_after: str | None,
) -> tuple[list[Delivery], bool]:
    """Newest first, keyset-paginated on (created_at, id)."""
    query = select(Delivery)
    if state is not None:
        query = query.where(Delivery.state == state)
    if merchant_id is not None:
        query = query.where(Delivery.merchant_id == merchant_id)
    if starting_after is not None:
        cursor = await session.get(Delivery, starting_after)
        if cursor is None:
            raise LookupError(starting_after)
        query = query.where(
            func.row(Delivery.created_at, Delivery.id) < func.row(cursor.created_at, cursor.id)
        )
    query = query.order_by(Delivery.created_at.desc(), Delivery.id.desc()).limit(limit + 1)
    rows = list(await session.scalars(query))
    return rows[:limit], len(rows) > limit
