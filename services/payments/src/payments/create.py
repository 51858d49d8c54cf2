"""Creating a payment (the use case behind ``POST /api/v1/payments``), in four steps:

1. claim the Idempotency-Key, if there is one (a replay ends here with the stored response);
2. build the payment and its response body;
3. write both in one statement (payment, timeline, outbox event, usage, stored response);
4. if that write fails, release the claim so the client can retry with the same key.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from payplane_core.db import driver_connection
from sqlalchemy.ext.asyncio import AsyncEngine

from payments import idempotency, service
from payments.core.config import Settings
from payments.idempotency import Replay
from payments.models import Payment
from payments.schemas import PaymentCreate
from payments.views import payment_body


@dataclass(frozen=True)
class KeyPolicy:
    """How long an Idempotency-Key is remembered, and how long its first request may run."""

    ttl: timedelta
    lock: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> "KeyPolicy":
        return cls(
            ttl=timedelta(hours=settings.IDEMPOTENCY_TTL_HOURS),
            lock=timedelta(seconds=settings.IDEMPOTENCY_LOCK_SECONDS),
        )


@dataclass(frozen=True)
class Created:
    payment: Payment
    body: str  # the response body, as stored for replays
    used: int  # the merchant's payments this month, this one included


@dataclass(frozen=True)
class NewPayment:
    merchant_id: str
    data: PaymentCreate
    key: str | None  # the validated Idempotency-Key
    headers: dict[str, str]  # request id and trace context, carried by the outbox event


async def create_payment(
    engine: AsyncEngine, new: NewPayment, *, keys: KeyPolicy, now: datetime
) -> Created | Replay:
    if new.key is not None:
        replay = await _claim(engine, new, keys=keys, now=now)
        if replay is not None:
            return replay
    payment = service.new_payment(merchant_id=new.merchant_id, data=new.data, at=now)
    body = payment_body(payment)
    try:
        used = await _write(engine, new, payment=payment, body=body)
    except BaseException:
        if new.key is not None:
            await idempotency.release(engine, merchant_id=new.merchant_id, key=new.key)
        raise
    return Created(payment=payment, body=body, used=used)


async def _claim(
    engine: AsyncEngine, new: NewPayment, *, keys: KeyPolicy, now: datetime
) -> Replay | None:
    assert new.key is not None
    return await idempotency.claim(
        engine,
        merchant_id=new.merchant_id,
        key=new.key,
        print_=idempotency.fingerprint(new.data.model_dump(mode="json")),
        now=now,
        ttl=keys.ttl,
        lock=keys.lock,
    )


async def _write(engine: AsyncEngine, new: NewPayment, *, payment: Payment, body: str) -> int:
    async with driver_connection(engine) as conn:  # one statement, atomic on its own
        return await service.insert_payment(
            conn,
            payment=payment,
            response=body,
            source="api",
            headers=new.headers,
            idempotency_key=new.key,
        )
