"""Payment operations. Each runs inside the caller's transaction and never commits itself, so a
state change, its timeline row and its outbox row always land together or not at all.

The writes and the read before a change are the hot path (three per payment's life): they run
as ``Statement``s on the pooled connection's asyncpg connection (``driver_connection``), one
atomic statement each, without SQLAlchemy's execution layer (about 100 µs of CPU per
statement, ``python -m benchmarks statements``)."""

import json
from datetime import datetime
from typing import Any

import asyncpg
from payplane_core.db import Statement
from payplane_core.ids import new_id
from payplane_core.pagination import newest_first
from payplane_core.usage import current_period
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from payments import outbox
from payments.models import Payment, PaymentEvent
from payments.schemas import EventIn, PaymentCreate
from payments.snapshots import Snapshots
from payments.state import IllegalTransition, Status, check_transition


class PaymentNotFound(Exception):
    pass


class WrongProvider(Exception):
    """An event names a provider other than the one holding the payment."""


class ChargeMismatch(Exception):
    """A provider reports a charge whose amount or currency is not the payment's."""


def check_reporter(payment: Payment, event: EventIn) -> None:
    """Only the provider holding the payment may report on it, and only for what was asked.

    A payment gets its provider with the move to ``processing`` (the providers service's
    acceptance); from then on an event naming another provider is refused, whatever it asks,
    even a status the payment already has (that would otherwise be a silent no-op)."""
    if event.provider is not None and payment.provider not in (None, event.provider):
        raise WrongProvider(
            f"The payment is held by another provider than {event.provider}; not applied."
        )
    claimed = (event.amount, event.currency)
    if claimed != (None, None) and claimed != (payment.amount, payment.currency):
        raise ChargeMismatch(
            f"The reported charge ({event.amount} {event.currency}) is not the payment's"
            f" ({payment.amount} {payment.currency}); not applied."
        )


def new_payment(*, merchant_id: str, data: PaymentCreate, at: datetime) -> Payment:
    """The payment as it will be stored (not yet written)."""
    return Payment(
        id=new_id("pay"),
        merchant_id=merchant_id,
        amount=data.amount,
        currency=data.currency,
        status=Status.PENDING,
        provider=None,
        description=data.description,
        metadata_=data.metadata,
        created_at=at,
        updated_at=at,
    )


# The payment, its first timeline row, its outbox event and (with an Idempotency-Key) the stored
# response, in ONE statement: atomic on its own, one round trip, no explicit transaction.
# The event is ready (next_retry_at) by the database's clock, the one the relay's claim reads:
# when the insert's NOTIFY (migration 0004) wakes the relay, the row is claimable whatever
# this process's clock says.
_CREATE = """
WITH payment AS (
    INSERT INTO payments (id, merchant_id, amount, currency, status, provider, description,
                          metadata, created_at, updated_at)
    VALUES (:id, :merchant_id, :amount, :currency, :status, NULL, :description,
            CAST(:metadata AS jsonb), :at, :at)
    RETURNING id
), timeline AS (
    INSERT INTO payment_events (payment_id, type, status, source, detail, at)
    SELECT id, 'payment.created', :status, :source, '{}'::jsonb, :at FROM payment
), event AS (
    INSERT INTO outbox_events (id, payment_id, merchant_id, event_type, routing_key, payload,
                               headers, state, attempts, next_retry_at, created_at)
    SELECT :event_id, id, :merchant_id, :event_type, :event_type, CAST(:payload AS jsonb),
           CAST(:headers AS jsonb), 'pending', 0, now(), :at
    FROM payment
), usage AS (
    INSERT INTO monthly_usage (merchant_id, period, payments)
    SELECT :merchant_id, :period, 1 FROM payment
    ON CONFLICT (merchant_id, period) DO UPDATE SET payments = monthly_usage.payments + 1
    RETURNING payments
)%s
SELECT (SELECT payments FROM usage) AS used
"""
_COMPLETE_KEY = """, idempotency AS (
    UPDATE idempotency_keys SET state = 'completed', response_status = 201,
                                response_body = :response
    WHERE merchant_id = :merchant_id AND key = :key AND EXISTS (SELECT 1 FROM payment)
)"""
_CREATES = {keyed: Statement(_CREATE % (_COMPLETE_KEY if keyed else "")) for keyed in (0, 1)}


async def insert_payment(
    conn: asyncpg.Connection,
    *,
    payment: Payment,
    response: str,
    source: str,
    headers: dict[str, str],
    idempotency_key: str | None = None,
) -> int:
    """Write a new payment with its timeline row, outbox event, stored response (if keyed) and
    its count in the month's usage; returns the merchant's payments this month."""
    event = outbox.event_for(payment, at=payment.created_at, headers=headers)
    params = {
        "id": payment.id,
        "merchant_id": payment.merchant_id,
        "amount": payment.amount,
        "currency": payment.currency,
        "status": payment.status,
        "description": payment.description,
        "metadata": json.dumps(payment.metadata_),
        "at": payment.created_at,
        "source": source,
        "event_id": event.id,
        "event_type": event.event_type,
        "payload": json.dumps(event.payload),
        "headers": json.dumps(event.headers),
        "period": current_period(payment.created_at),
    }
    if idempotency_key is not None:
        params |= {"key": idempotency_key, "response": response}
    return int(await _CREATES[idempotency_key is not None].fetchval(conn, params))


async def get_payment(
    session: AsyncSession, *, payment_id: str, merchant_id: str | None, for_update: bool = False
) -> Payment:
    """``merchant_id=None`` only for internal callers; a merchant never sees another's payment."""
    query = select(Payment).where(Payment.id == payment_id)
    if merchant_id is not None:
        query = query.where(Payment.merchant_id == merchant_id)
    if for_update:
        query = query.with_for_update()
    payment = await session.scalar(query)
    if payment is None:
        raise PaymentNotFound(payment_id)
    return payment


async def list_payments(
    session: AsyncSession, *, merchant_id: str, limit: int, starting_after: str | None
) -> tuple[list[Payment], bool]:
    """Newest first; ``CursorNotFound`` if ``starting_after`` is not one of this merchant's."""
    return await newest_first(
        session,
        select(Payment).where(Payment.merchant_id == merchant_id),
        time=Payment.created_at,
        ident=Payment.id,
        limit=limit,
        starting_after=starting_after,
    )


async def timeline(session: AsyncSession, *, payment_id: str) -> list[PaymentEvent]:
    query = (
        select(PaymentEvent).where(PaymentEvent.payment_id == payment_id).order_by(PaymentEvent.id)
    )
    return list(await session.scalars(query))


_COLUMNS = tuple(column.name for column in Payment.__table__.columns)
_READ = Statement(f"SELECT {', '.join(_COLUMNS)} FROM payments WHERE id = :id")  # noqa: S608

# The change, its timeline row and (for a status change) its outbox event in ONE statement:
# atomic on its own, one round trip. It applies only if the payment still has the status and
# provider the checks were made against (compare-and-set, instead of holding a row lock across
# round trips); otherwise nothing is written and the caller reads again and re-checks.
_CHANGE = """
WITH changed AS (
    UPDATE payments SET status = :status, provider = :provider, updated_at = :at
    WHERE id = :id AND status = :was_status AND provider IS NOT DISTINCT FROM :was_provider
    RETURNING id
), timeline AS (
    INSERT INTO payment_events (payment_id, type, status, source, detail, at)
    SELECT id, :type, :status, :source, CAST(:detail AS jsonb), :at FROM changed
)%s
SELECT count(*) FROM changed
"""
_ANNOUNCE = """, event AS (
    INSERT INTO outbox_events (id, payment_id, merchant_id, event_type, routing_key, payload,
                               headers, state, attempts, next_retry_at, created_at)
    SELECT :event_id, id, :merchant_id, :event_type, :event_type, CAST(:payload AS jsonb),
           CAST(:headers AS jsonb), 'pending', 0, now(), :at
    FROM changed
)"""
_CHANGES = {announce: Statement(_CHANGE % (_ANNOUNCE if announce else "")) for announce in (0, 1)}
MAX_CONTENDED_TRIES = 10  # each lost race means another change landed: a few at most


async def _read(conn: asyncpg.Connection, payment_id: str) -> Payment:
    row = await _READ.fetchrow(conn, {"id": payment_id})
    if row is None:
        raise PaymentNotFound(payment_id)
    values = dict(zip(_COLUMNS, row, strict=True))
    values["metadata_"] = values.pop("metadata")
    return Payment(**values)  # detached: no session, no unit of work


async def record_event(
    conn: asyncpg.Connection,
    *,
    payment_id: str,
    event: EventIn,
    headers: dict[str, str],
    at: datetime,
    snapshots: Snapshots | None = None,
) -> tuple[Payment, bool]:
    """Record a step; with ``event.status`` also move the state machine.

    Reporting the status the payment already has is a no-op, so a redelivered provider
    outcome changes nothing. Returns the payment and whether anything was written. Runs in
    the caller's transaction if there is one; otherwise the write is its own transaction.
    With ``snapshots``, the payment as this process last wrote it stands in for the read
    before the write (``payments.snapshots``): the write's compare-and-set checks it.
    """
    payment = snapshots.take(payment_id) if snapshots is not None else None
    for _ in range(MAX_CONTENDED_TRIES):
        fresh = payment is None
        if payment is None:
            payment = await _read(conn, payment_id)
        try:
            changes = _apply(payment, event, at)
        except (WrongProvider, ChargeMismatch, IllegalTransition):
            if fresh:
                raise
            payment = None  # a refusal is decided on what the database says, not on a snapshot
            continue
        if changes is None:
            if fresh:
                return payment, False
            payment = None  # so is a no-op
            continue
        if await _write_change(conn, payment, event=event, was=changes, headers=headers, at=at):
            if snapshots is not None:
                snapshots.keep(payment)
            return payment, True
        payment = None  # it changed since it was read: read it again
    raise RuntimeError(f"payment {payment_id} kept changing under {MAX_CONTENDED_TRIES} tries")


def _apply(payment: Payment, event: EventIn, at: datetime) -> tuple[str, str | None] | None:
    """Check the event against the payment and apply it to the object; returns the status and
    provider the payment had (for the compare-and-set), or None when it changes nothing."""
    was = (payment.status, payment.provider)
    check_reporter(payment, event)
    if event.status is not None and event.status == payment.status:
        return None
    if event.status is not None:
        check_transition(Status(payment.status), event.status)
        payment.status = event.status
    if event.provider is not None and event.status is Status.PROCESSING:
        payment.provider = event.provider  # the only way a provider comes to hold a payment
    payment.updated_at = at
    return was


async def _write_change(
    conn: asyncpg.Connection,
    payment: Payment,
    *,
    event: EventIn,
    was: tuple[str, str | None],
    headers: dict[str, str],
    at: datetime,
) -> bool:
    """True if written; False if the payment changed since it was read (nothing written)."""
    params: dict[str, Any] = {
        "id": payment.id,
        "status": payment.status,
        "provider": payment.provider,
        "was_status": was[0],
        "was_provider": was[1],
        "at": at,
        "type": event.type,
        "source": event.source,
        "detail": json.dumps(event.detail),
    }
    announce = event.status is not None
    if announce:
        announced = outbox.event_for(payment, at=at, headers=headers)
        params |= {
            "event_id": announced.id,
            "merchant_id": payment.merchant_id,
            "event_type": announced.event_type,
            "payload": json.dumps(announced.payload),
            "headers": json.dumps(announced.headers),
        }
    return bool(await _CHANGES[announce].fetchval(conn, params))


__all__ = [
    "ChargeMismatch",
    "PaymentNotFound",
    "WrongProvider",
    "check_reporter",
    "insert_payment",
    "new_payment",
    "get_payment",
    "list_payments",
    "record_event",
    "timeline",
]
