"""Idempotency-Key handling (IETF httpapi idempotency-key draft).

The key row is claimed by its own statement before the work starts, so a concurrent request
with the same key sees it at once (409 while in flight) instead of waiting on a lock. The
statement that writes the payment also stores the response on the row, so the payment and the
stored response commit together. A claim whose request died is taken over once its lock expires.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from payplane_core.db import autocommit
from payplane_core.problems import Problem
from payplane_core.retention import Retention
from sqlalchemy import Row, delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from payments.models import IdempotencyKey

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
    now: datetime,
    ttl: timedelta,
    lock: timedelta,
) -> Replay | None:
    """None: go ahead (the key is ours). Replay: answer with the stored response.

    Raises 422 when the key was used with another body, 409 while its first request runs.
    """
    row = dict(
        merchant_id=merchant_id,
        key=key,
        fingerprint=print_,
        state="in_flight",
        created_at=now,
        locked_until=now + lock,
        expires_at=now + ttl,
    )
    while True:
        # Each step is one atomic statement; a concurrent request sees the claim at once.
        async with autocommit(engine) as conn:
            if await _insert_new(conn, row) or await _take_over(conn, row, now):
                return None
            existing = await _existing(conn, merchant_id=merchant_id, key=key)
        if existing is not None:
            return _answer(existing, print_)
        # Deleted between our statements (its request failed and released it): claim again.


async def _insert_new(conn: AsyncConnection, row: dict[str, Any]) -> bool:
    inserted = await conn.scalar(
        insert(IdempotencyKey).values(**row).on_conflict_do_nothing().returning(IdempotencyKey.key)
    )
    return inserted is not None


async def _take_over(conn: AsyncConnection, row: dict[str, Any], now: datetime) -> bool:
    """An expired key, or an in-flight claim whose request died (its lock ran out)."""
    taken = await conn.scalar(
        update(IdempotencyKey)
        .where(
            IdempotencyKey.merchant_id == row["merchant_id"],
            IdempotencyKey.key == row["key"],
            (IdempotencyKey.expires_at < now)
            | ((IdempotencyKey.state == "in_flight") & (IdempotencyKey.locked_until < now)),
        )
        .values(**row, response_status=None, response_body=None)
        .returning(IdempotencyKey.key)
    )
    return taken is not None


async def _existing(conn: AsyncConnection, *, merchant_id: str, key: str) -> Row | None:
    query = select(IdempotencyKey.__table__).where(
        IdempotencyKey.merchant_id == merchant_id, IdempotencyKey.key == key
    )
    return (await conn.execute(query)).first()


def _answer(existing: Row, print_: str) -> Replay:
    """A live claim by another request: its stored response, or why there is none to give."""
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
