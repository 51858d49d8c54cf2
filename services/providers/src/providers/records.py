"""The routing flow's records: one SQL statement each, atomic on its own.

Plain SQL on the pooled connection's asyncpg connection, outside any transaction
(``payplane_core.db.Statement``: no BEGIN/COMMIT round trips, no ORM units of work, no
SQLAlchemy execution layer): this is the hot path of every payment. ``flow`` decides what to
write and when; this module only knows how.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from payplane_core.db import Statement, driver_connection
from sqlalchemy.ext.asyncio import AsyncEngine

from providers.models import Routing
from providers.registry import DIGEST_SQL


@dataclass(frozen=True, slots=True)
class Earlier:
    """An attempt already recorded for the payment (``policy.AttemptLike``)."""

    id: int
    number: int
    provider: str
    state: str
    charge_id: str | None


@dataclass(frozen=True, slots=True)
class Accepted:
    """What the report of an accepted payment says about its attempts."""

    number: int | None
    charge_id: str | None
    attempts: int


@dataclass(frozen=True, slots=True)
class Found:
    """A payment's routing (None: not decided yet) and attempts, read in one snapshot, with
    the digest of the provider registry at that moment (``registry.ProviderCache``)."""

    routing: Routing | None
    attempts: list[Earlier]
    providers_digest: str | None

    def accepted(self) -> Accepted:
        kept = next((a for a in self.attempts if a.state == "accepted"), None)
        if kept is None:
            return Accepted(number=None, charge_id=None, attempts=len(self.attempts))
        return Accepted(kept.number, kept.charge_id, attempts=len(self.attempts))


# One round trip for all a delivery needs to know before it acts. The attempts are read even
# when a routing exists: a redelivery reports the accepted one again from them.
_FIND = Statement(
    f"""
    SELECT r.outcome, r.provider, r.reason, r.decided_at,
      (SELECT coalesce(json_agg(json_build_array(a.id, a.number, a.provider, a.state,
                                                 a.charge_id) ORDER BY a.number), '[]')
       FROM attempts AS a WHERE a.payment_id = :payment_id) AS attempts,
      {DIGEST_SQL} AS digest
    FROM (SELECT 1) AS one LEFT JOIN routings AS r ON r.payment_id = :payment_id
    """  # noqa: S608 - a constant fragment, no input
)
_NOTHING_KNOWN = {"error": None, "http_status": None}
_START_ATTEMPT = Statement(
    "INSERT INTO attempts (payment_id, number, provider, state, started_at)"
    " VALUES (:payment_id, :number, :provider, 'sending', :at) RETURNING id"
)
_FINISH_ATTEMPT_SQL = (
    "UPDATE attempts SET state = :state, error = :error, http_status = :http_status,"
    " charge_id = :charge_id, finished_at = :at WHERE id = :id"
)
_DECIDE_SQL = (
    "INSERT INTO routings (payment_id, outcome, provider, reason, decided_at)"
    " VALUES (:payment_id, :outcome, :provider, :reason, :at)"
)
_FINISH_ATTEMPT = Statement(_FINISH_ATTEMPT_SQL)
_DECIDE = Statement(_DECIDE_SQL)
# The accepted attempt and the decision in one statement: both or neither (a crash between
# them leaves the attempt "sending", which a redelivery settles with the provider).
_ACCEPT = Statement(f"WITH finished AS ({_FINISH_ATTEMPT_SQL}) {_DECIDE_SQL}")


async def find(engine: AsyncEngine, payment_id: str) -> Found:
    async with driver_connection(engine) as conn:
        row = await _FIND.fetchrow(conn, {"payment_id": payment_id})
    routing = None
    if row["outcome"] is not None:
        routing = Routing(
            payment_id=payment_id,
            outcome=row["outcome"],
            provider=row["provider"],
            reason=row["reason"],
            decided_at=row["decided_at"],
        )
    return Found(routing, [Earlier(*a) for a in row["attempts"]], row["digest"])


async def start_attempt(engine: AsyncEngine, payment_id: str, provider: str, number: int) -> int:
    # Committed before the call: if this worker dies mid-call, the next one sees a "sending"
    # attempt and settles it with the provider before trying anyone else.
    values = {"payment_id": payment_id, "number": number, "provider": provider}
    async with driver_connection(engine) as conn:
        return await _START_ATTEMPT.fetchval(conn, values | {"at": datetime.now(UTC)})


def finish(attempt_id: int, state: str, *, charge: dict | None = None, **known: Any) -> dict:
    """The values that finish an attempt, for ``finish_attempt`` (or ``decide``, with the
    decision): the provider's ``charge``, and what is ``known`` of ``error`` and ``http_status``."""
    charge_id = (charge or {}).get("id")
    return _NOTHING_KNOWN | known | {"id": attempt_id, "state": state, "charge_id": charge_id}


async def finish_attempt(engine: AsyncEngine, finished: dict) -> None:
    async with driver_connection(engine) as conn:
        await _FINISH_ATTEMPT.execute(conn, finished | {"at": datetime.now(UTC)})


async def decide(engine: AsyncEngine, decided: Routing, *, finished: dict | None = None) -> None:
    """Write the decision (once: a second one fails on the key), with the attempt it keeps
    when that attempt is not yet recorded as accepted."""
    values = {
        "payment_id": decided.payment_id,
        "outcome": decided.outcome,
        "provider": decided.provider,
        "reason": decided.reason,
        "at": decided.decided_at,
    }
    async with driver_connection(engine) as conn:
        if finished is None:
            await _DECIDE.execute(conn, values)
        else:
            await _ACCEPT.execute(conn, values | finished)
