"""Deliveries in the notifier database: accept, claim, record. Plain keyword-only functions.

Ownership of a delivery is a lease: whoever claims it sets ``locked_until`` (and pushes
``next_attempt_at`` to the same instant, so the retry loop does not see it as due). The lease
value is also the claim's token: an attempt's outcome changes the delivery only if the token
still matches, so a notifier that lost its lease records its attempt but cannot overwrite the
state set by the one that took over. Times come from the database clock.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from payplane_core.db import Statement, driver_connection
from payplane_core.ids import has_prefix, new_id
from payplane_core.pagination import newest_first
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

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


_COLUMN_NAMES = tuple(c.name for c in Delivery.__table__.columns)
_COLUMNS = ", ".join(_COLUMN_NAMES)

# One statement for a whole burst of events, atomic on its own, on the pooled connection's
# asyncpg connection outside any transaction (autocommit: no BEGIN/COMMIT round trips), one
# array per column: no SQLAlchemy statement execution or result processing on the hot path.
_ACCEPT_SQL = """
    INSERT INTO deliveries ({columns})
    SELECT e.id, e.event_id, e.merchant_id, e.payment_id, e.event_type, e.body,
           CAST(e.trace AS jsonb), 'pending', 0,
           now() + make_interval(secs => CAST(:lease AS float8)),
           now() + make_interval(secs => CAST(:lease AS float8)),
           NULL, NULL, now(), now(), NULL
    FROM unnest(CAST(:ids AS text[]), CAST(:event_ids AS text[]), CAST(:merchant_ids AS text[]),
                CAST(:payment_ids AS text[]), CAST(:event_types AS text[]),
                CAST(:bodies AS text[]), CAST(:traces AS text[]))
         AS e(id, event_id, merchant_id, payment_id, event_type, body, trace)
    ON CONFLICT (event_id) DO NOTHING
    RETURNING {columns}
"""
_ACCEPT = Statement(_ACCEPT_SQL.format(columns=_COLUMNS))


def _engine(sessions: async_sessionmaker) -> AsyncEngine:
    return sessions.kw["bind"]


def _delivery(row: Any) -> Delivery:
    """A detached model instance from a RETURNING row (no session, no identity map); jsonb
    arrives decoded (the codec SQLAlchemy's dialect sets on its connections)."""
    return Delivery(**dict(zip(_COLUMN_NAMES, row, strict=True)))


async def accept_events(
    sessions: async_sessionmaker, *, events: Sequence[IncomingEvent], lease_seconds: float
) -> dict[str, Claim]:
    """Create the deliveries of ``events``, already claimed by us, in one statement: the
    claims by event id. An event left out is already known (or repeated in ``events``).

    A known event is someone else's business (delivered, failed, or pending with the retry
    loop): the caller acks the message without sending anything.
    """
    async with driver_connection(_engine(sessions)) as conn:
        rows = await _ACCEPT.fetch(
            conn,
            {
                "ids": [new_id("dlv") for _ in events],
                "event_ids": [e.event_id for e in events],
                "merchant_ids": [e.merchant_id for e in events],
                "payment_ids": [e.payment_id for e in events],
                "event_types": [e.event_type for e in events],
                "bodies": [e.body for e in events],
                "traces": [json.dumps(e.trace) for e in events],
                "lease": float(lease_seconds),
            },
        )
    created = (_delivery(row) for row in rows)
    return {d.event_id: Claim(d, d.locked_until) for d in created}


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


async def defer(sessions: async_sessionmaker, *, claim: Claim, seconds: float) -> None:
    """Give a claimed delivery back unsent, due again in ``seconds`` (its merchant is at its
    concurrency cap); nothing happens if our lease is gone."""
    async with sessions.begin() as session:
        await session.execute(
            update(Delivery)
            .where(Delivery.id == claim.delivery.id, Delivery.locked_until == claim.lease)
            .values(locked_until=None, next_attempt_at=_lease_end(seconds))
        )


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


@dataclass(frozen=True, slots=True)
class Attempt:
    """An attempt made on a claimed delivery, to be recorded."""

    claim: Claim
    outcome: AttemptOutcome
    manual: bool


_D_COLUMNS = ", ".join(f"d.{name}" for name in _COLUMN_NAMES)

# For each attempt: the delivery's new state (only while our lease holds), the state it is in
# afterwards (ours, or the current row's if we lost the lease: FOR SHARE waits for a writer and
# reads its result) and the attempt row, for a whole burst in one statement: atomic without a
# transaction block, one round trip.
_RECORD_SQL = """
    WITH input AS (
        SELECT * FROM unnest(
            CAST(:ids AS text[]), CAST(:leases AS timestamptz[]), CAST(:states AS text[]),
            CAST(:statuses AS integer[]), CAST(:errors AS text[]), CAST(:triggers AS text[]),
            CAST(:urls AS text[]), CAST(:started AS timestamptz[]),
            CAST(:latencies AS integer[]), CAST(:succeeded AS boolean[]),
            CAST(:waits AS float8[])
        ) AS i(id, lease, state, status, error, trigger, url, started_at, latency_ms,
               succeeded, wait)
    ), updated AS (
        UPDATE deliveries AS d
        SET state = i.state, attempts = d.attempts + 1, locked_until = NULL,
            last_status = i.status, last_error = i.error, updated_at = now(),
            delivered_at = CASE WHEN i.state = 'delivered' THEN now() ELSE d.delivered_at END,
            next_attempt_at = CASE WHEN i.wait IS NULL THEN d.next_attempt_at
                                   ELSE now() + make_interval(secs => i.wait) END
        FROM input AS i
        WHERE d.id = i.id AND d.locked_until = i.lease
        RETURNING {d_columns}
    ), theirs AS (
        SELECT {d_columns} FROM deliveries AS d JOIN input AS i ON d.id = i.id
        WHERE NOT EXISTS (SELECT 1 FROM updated AS u WHERE u.id = d.id)
        FOR SHARE OF d
    ), now_state AS (
        SELECT {columns} FROM updated UNION ALL SELECT {columns} FROM theirs
    ), attempt AS (
        INSERT INTO delivery_attempts (delivery_id, number, trigger, url, started_at, latency_ms,
                                       status_code, succeeded, error, resulting_state)
        SELECT s.id,
               (SELECT count(*) FROM delivery_attempts AS a WHERE a.delivery_id = s.id) + 1,
               i.trigger, i.url, i.started_at, i.latency_ms, i.status, i.succeeded, i.error,
               s.state
        FROM now_state AS s JOIN input AS i ON i.id = s.id
    )
    SELECT {columns} FROM now_state
"""
_RECORD = Statement(_RECORD_SQL.format(columns=_COLUMNS, d_columns=_D_COLUMNS))


async def record_attempts(
    sessions: async_sessionmaker, *, attempts: Sequence[Attempt], schedule: list[float]
) -> list[Delivery]:
    """Store each attempt and (where our lease still holds) its delivery's new state, in one
    atomic statement; the deliveries as they are afterwards, in the order of ``attempts``."""
    ids = [a.claim.delivery.id for a in attempts]
    if len(set(ids)) != len(ids):  # one claim, one attempt: never two of a delivery at once
        raise ValueError("two attempts of one delivery in one burst")
    decided = [
        next_state(
            attempts_before=a.claim.delivery.attempts,
            succeeded=a.outcome.succeeded,
            manual=a.manual,
            schedule=schedule,
        )
        for a in attempts
    ]
    params: dict[str, Any] = {
        "ids": ids,
        "leases": [a.claim.lease for a in attempts],
        "states": [state for state, _ in decided],
        "statuses": [a.outcome.status_code for a in attempts],
        "errors": [a.outcome.error for a in attempts],
        "triggers": ["manual" if a.manual else "automatic" for a in attempts],
        "urls": [a.outcome.url for a in attempts],
        "started": [a.outcome.started_at for a in attempts],
        "latencies": [a.outcome.latency_ms for a in attempts],
        "succeeded": [a.outcome.succeeded for a in attempts],
        "waits": [wait for _, wait in decided],
    }
    async with driver_connection(_engine(sessions)) as conn:
        rows = await _RECORD.fetch(conn, params)
    after = {d.id: d for d in map(_delivery, rows)}
    return [after[delivery_id] for delivery_id in ids]


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
    """Newest first (``payplane_core.pagination``); ``CursorNotFound`` if ``starting_after``
    is not in this listing."""
    query = select(Delivery)
    if state is not None:
        query = query.where(Delivery.state == state)
    if merchant_id is not None:
        query = query.where(Delivery.merchant_id == merchant_id)
    return await newest_first(
        session,
        query,
        time=Delivery.created_at,
        ident=Delivery.id,
        limit=limit,
        starting_after=starting_after,
    )
