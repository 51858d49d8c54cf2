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

import asyncpg
from payplane_core.db import Statement, driver_connection
from payplane_core.problems import Problem
from payplane_core.retention import Retention
from sqlalchemy.ext.asyncio import AsyncEngine

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


# Each step is one atomic statement (on the driver connection, as the create itself: see
# ``payments.service``); a concurrent request sees the claim at once.
_INSERT_NEW = Statement(
    """
    INSERT INTO idempotency_keys (merchant_id, key, fingerprint, state, created_at,
                                  locked_until, expires_at)
    VALUES (:merchant_id, :key, :fingerprint, 'in_flight', :created_at, :locked_until,
            :expires_at)
    ON CONFLICT DO NOTHING
    RETURNING key
    """
)
# An expired key, or an in-flight claim whose request died (its lock ran out).
_TAKE_OVER = Statement(
    """
    UPDATE idempotency_keys
    SET fingerprint = :fingerprint, state = 'in_flight', created_at = :created_at,
        locked_until = :locked_until, expires_at = :expires_at,
        response_status = NULL, response_body = NULL
    WHERE merchant_id = :merchant_id AND key = :key
      AND (expires_at < :created_at OR (state = 'in_flight' AND locked_until < :created_at))
    RETURNING key
    """
)
_EXISTING = Statement(
    """
    SELECT fingerprint, state, response_status, response_body FROM idempotency_keys
    WHERE merchant_id = :merchant_id AND key = :key
    """
)
_RELEASE = Statement(
    """
    DELETE FROM idempotency_keys
    WHERE merchant_id = :merchant_id AND key = :key AND state = 'in_flight'
    """
)


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
    row = {
        "merchant_id": merchant_id,
        "key": key,
        "fingerprint": print_,
        "created_at": now,
        "locked_until": now + lock,
        "expires_at": now + ttl,
    }
    while True:
        async with driver_connection(engine) as conn:
            if await _INSERT_NEW.fetchval(conn, row) or await _TAKE_OVER.fetchval(conn, row):
                return None
            existing = await _EXISTING.fetchrow(conn, row)
        if existing is not None:
            return _answer(existing, print_)
        # Deleted between our statements (its request failed and released it): claim again.


def _answer(existing: asyncpg.Record, print_: str) -> Replay:
    """A live claim by another request: its stored response, or why there is none to give."""
    if existing["fingerprint"] != print_:
        raise Problem(
            422,
            "idempotency-key-reused",
            "This Idempotency-Key was already used with a different request body.",
        )
    if existing["state"] == "in_flight":
        raise Problem(
            409,
            "idempotency-key-in-flight",
            "A request with this Idempotency-Key is still being processed; retry later.",
            headers={"Retry-After": "1"},
        )
    assert existing["response_status"] is not None and existing["response_body"] is not None
    return Replay(existing["response_status"], existing["response_body"])


async def release(engine: AsyncEngine, *, merchant_id: str, key: str) -> None:
    """The work failed: forget the claim so the client can retry with the same key."""
    async with driver_connection(engine) as conn:
        await _RELEASE.execute(conn, {"merchant_id": merchant_id, "key": key})


# Expired keys are deleted by the service's retention job (payplane_core.retention).
EXPIRED_KEYS = Retention("idempotency_keys", "expires_at", keep=timedelta(0))
