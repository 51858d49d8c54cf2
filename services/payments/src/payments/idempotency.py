"""Idempotency-Key handling (IETF httpapi idempotency-key draft).

The key row is claimed by its own statement before the work starts, so a concurrent request
with the same key sees it at once (409 while in flight) instead of waiting on a lock. The
statement that writes the payment also stores the response on the row, so the payment and the
stored response commit together. A claim whose request died is taken over once its lock expires.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from payplane_core.db import autocommit
from payplane_core.problems import Problem
from payplane_core.retention import Retention
from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from payments.models import IdempotencyKey
from payments.outbox import now

MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class Replay:
    status: int
    body: str


def fingerprint(body: Any) -> str:
    """Same JSON value, same fingerprint, whatever the key order or spacing."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def validate_key(key: str) -> str:
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable() or not key.isascii():
        raise Problem(
            400,
            "invalid-idempotency-key",
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters.",
        )
    return key


async def claim(
    engine: AsyncEngine,
    *,
    merchant_id: str,
    key: str,
    print_: str,
    ttl: timedelta,
    lock: timedelta,
) -> Replay | None:
    """None: go ahead (the key is ours). Replay: answer with the stored response.

    Raises 422 when the key was used with another body, 409 while its first request runs.
    """
    at = now()
    values = dict(
        merchant_id=merchant_id,
        key=key,
        fingerprint=print_,
        state="in_flight",
        created_at=at,
        locked_until=at + lock,
        expires_at=at + ttl,
    )
    # Each step is one atomic statement; a concurrent request sees the claim at once.
    async with autocommit(engine) as conn:
        inserted = await conn.scalar(
            insert(IdempotencyKey)
            .values(**values)
            .on_conflict_do_nothing()
            .returning(IdempotencyKey.key)
        )
        if inserted is not None:
            return None
        # Take over an expired key, or an in-flight claim whose request died.
        taken = await conn.scalar(
            update(IdempotencyKey)
            .where(
                IdempotencyKey.merchant_id == merchant_id,
                IdempotencyKey.key == key,
                (IdempotencyKey.expires_at < at)
                | ((IdempotencyKey.state == "in_flight") & (IdempotencyKey.locked_until < at)),
            )
            .values(**values, response_status=None, response_body=None)
            .returning(IdempotencyKey.key)
        )
        if taken is not None:
            return None
        existing = (
            await conn.execute(
                select(IdempotencyKey.__table__).where(
                    IdempotencyKey.merchant_id == merchant_id, IdempotencyKey.key == key
                )
            )
        ).first()
    if existing is None:  # deleted between our statements: the first request failed; retry
        return await claim(
            engine, merchant_id=merchant_id, key=key, print_=print_, ttl=ttl, lock=lock
        )
    if existing.fingerprint != print_:
        raise Problem(
            422,
            "idempotency-key-reused",
            "This Idempotency-Key was already used with a different request body.",
        )
    if existing.state == "in_flight":
        raise Problem(
            409,
            "idempotency-key-in-flight",
            "A request with this Idempotency-Key is still being processed; retry later.",
            headers={"Retry-After": "1"},
        )
    assert existing.response_status is not None and existing.response_body is not None
    return Replay(existing.response_status, existing.response_body)


async def release(engine: AsyncEngine, *, merchant_id: str, key: str) -> None:
    """The work failed: forget the claim so the client can retry with the same key."""
    async with autocommit(engine) as conn:
        await conn.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.merchant_id == merchant_id,
                IdempotencyKey.key == key,
                IdempotencyKey.state == "in_flight",
            )
        )


# Expired keys are deleted by the service's retention job (payplane_core.retention).
EXPIRED_KEYS = Retention("idempotency_keys", "expires_at", keep=timedelta(0))
