"""Payment operations. Each runs inside the caller's transaction and never commits itself, so a
state change, its timeline row and its outbox row always land together or not at all."""

from datetime import datetime
from typing import Any

from payplane_core.ids import new_id
from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from payments import outbox
from payments.models import Payment, PaymentEvent
from payments.schemas import EventIn, PaymentCreate
from payments.state import Status, check_transition


class PaymentNotFound(Exception):
    pass


def _timeline(
    session: AsyncSession,
    *,
    payment: Payment,
    type_: str,
    source: str,
    detail: dict[str, Any],
    at: datetime,
) -> None:
    session.add(
        PaymentEvent(
            payment_id=payment.id,
            type=type_,
            status=payment.status,
            source=source,
            detail=detail,
            at=at,
        )
    )


async def create_payment(
    session: AsyncSession,
    *,
    merchant_id: str,
    data: PaymentCreate,
    source: str,
    headers: dict[str, str],
) -> Payment:
    at = outbox.now()
    payment = Payment(
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
    session.add(payment)
    await session.flush()  # the payment row must exist before rows that reference it
    _timeline(session, payment=payment, type_="payment.created", source=source, detail={}, at=at)
    outbox.enqueue(session, payment=payment, at=at, headers=headers)
    return payment


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
    """Newest first, keyset-paginated on (created_at, id) so pages never skip or repeat."""
    query = select(Payment).where(Payment.merchant_id == merchant_id)
    if starting_after is not None:
        cursor = await get_payment(session, payment_id=starting_after, merchant_id=merchant_id)
        query = query.where(
            tuple_(Payment.created_at, Payment.id) < tuple_(cursor.created_at, cursor.id)
        )
    query = query.order_by(Payment.created_at.desc(), Payment.id.desc()).limit(limit + 1)
    rows = list(await session.scalars(query))
    return rows[:limit], len(rows) > limit


async def timeline(session: AsyncSession, *, payment_id: str) -> list[PaymentEvent]:
    query = (
        select(PaymentEvent).where(PaymentEvent.payment_id == payment_id).order_by(PaymentEvent.id)
    )
    return list(await session.scalars(query))


async def record_event(
    session: AsyncSession, *, payment_id: str, event: EventIn, headers: dict[str, str]
) -> tuple[Payment, bool]:
    """Record a step; with ``event.status`` also move the state machine (row-locked).

    Reporting the status the payment already has is a no-op, so a redelivered provider
    outcome changes nothing. Returns the payment and whether anything was written.
    """
    payment = await get_payment(session, payment_id=payment_id, merchant_id=None, for_update=True)
    at = outbox.now()
    if event.status is not None and event.status == payment.status:
        return payment, False
    if event.status is not None:
        check_transition(Status(payment.status), event.status)
        payment.status = event.status
    if event.provider is not None:
        payment.provider = event.provider
    payment.updated_at = at
    _timeline(
        session, payment=payment, type_=event.type, source=event.source, detail=event.detail, at=at
    )
    if event.status is not None:
        outbox.enqueue(session, payment=payment, at=at, headers=headers)
    return payment, True


__all__ = [
    "PaymentNotFound",
    "create_payment",
    "get_payment",
    "list_payments",
    "record_event",
    "timeline",
]
