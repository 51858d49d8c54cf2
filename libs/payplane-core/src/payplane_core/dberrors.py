"""What a database error means for the client: their data (4xx) or our infrastructure (503).

Classified by SQLSTATE class (PostgreSQL Appendix A), so every service maps them the same way:
a value PostgreSQL cannot store is the request's fault and answers 422; an unreachable,
restarting or saturated database answers 503 with ``Retry-After``, which is also the only kind
of failure the payments circuit breaker counts (see ``payplane_core.breaker``).
"""

import asyncio
from enum import StrEnum

import asyncpg
from asyncpg.exceptions._base import DataError as _ArgumentError  # raised client side
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi

# 22: data exception (NUL in text, bad encoding, out of range, too long, bad JSON...) and
# 23: integrity violation are the request's doing;
# 08 connection, 53 insufficient resources, 57 operator intervention (shutdown, cancel),
# 58 system error, 40 transaction rollback (serialization failure, deadlock: retry), and at
# connect time 28 (authorization) and 3D (no such database): configuration, not input.
_INFRASTRUCTURE_CLASSES = frozenset({"08", "28", "3D", "40", "53", "57", "58"})


class Fault(StrEnum):
    CLIENT_DATA = "client-data"
    CONFLICT = "conflict"
    INFRASTRUCTURE = "infrastructure"


def _chain(error: BaseException) -> list[BaseException]:
    """The error, the driver error SQLAlchemy wrapped, and what caused them."""
    seen: list[BaseException] = []
    candidate: BaseException | None = error
    while candidate is not None and candidate not in seen and len(seen) < 5:
        seen.append(candidate)
        candidate = getattr(candidate, "orig", None) or candidate.__cause__
    return seen


def classify(error: BaseException) -> Fault | None:
    """The kind of a database-layer error, or None when it is not one we can explain (a bug)."""
    if isinstance(error, sa_exc.TimeoutError):  # connection pool exhausted
        return Fault.INFRASTRUCTURE
    chain = _chain(error)
    for link in chain:
        state = getattr(link, "sqlstate", None)
        if isinstance(state, str) and len(state) == 5:
            if state.startswith("22"):
                return Fault.CLIENT_DATA
            if state.startswith("23"):
                return Fault.CONFLICT
            return Fault.INFRASTRUCTURE if state[:2] in _INFRASTRUCTURE_CLASSES else None
    # Refused by the driver before sending: a value it cannot encode (lone surrogate...).
    if any(isinstance(link, (UnicodeError, _ArgumentError)) for link in chain):
        return Fault.CLIENT_DATA
    infrastructure = (
        asyncpg.PostgresConnectionError,
        asyncpg.InterfaceError,
        asyncpg.InternalClientError,  # a connection left mid-operation: never the request's
        sa_exc.DisconnectionError,
        ConnectionError,
        OSError,
        asyncio.TimeoutError,
    )
    if any(isinstance(link, infrastructure) for link in chain):
        return Fault.INFRASTRUCTURE
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return Fault.INFRASTRUCTURE
    return None


# What the problem handler catches; classify() decides the answer.
DATABASE_ERRORS: tuple[type[BaseException], ...] = (
    sa_exc.DBAPIError,
    # Raised unwrapped by engine.raw_connection() (driver_connection) when connecting fails,
    # e.g. "the database system is shutting down"; its cause carries the SQLSTATE.
    AsyncAdapt_asyncpg_dbapi.Error,
    asyncpg.InternalClientError,
    sa_exc.TimeoutError,
    sa_exc.DisconnectionError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    UnicodeEncodeError,
    ConnectionError,
    asyncio.TimeoutError,
)
