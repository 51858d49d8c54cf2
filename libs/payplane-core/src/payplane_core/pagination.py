"""Keyset pagination, newest first: the one way every list in the platform pages."""

from typing import Any

from sqlalchemy import Select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute


class CursorNotFound(LookupError):
    """``starting_after`` names no row of this listing."""


async def newest_first(
    session: AsyncSession,
    query: Select,
    *,
    time: InstrumentedAttribute,
    ident: InstrumentedAttribute,
    limit: int,
    starting_after: str | None,
) -> tuple[list[Any], bool]:
    """One page of ``query`` ordered by (time, id) descending, and whether more follow.

    The cursor is looked up through the same query, so it must belong to the listing (another
    merchant's payment id is simply not found). Ordering on the (time, id) pair, not time alone,
    means rows created in the same microsecond are neither skipped nor repeated.
    """
    if starting_after is not None:
        cursor = (
            await session.execute(
                query.with_only_columns(time, ident).where(ident == starting_after)
            )
        ).first()
        if cursor is None:
            raise CursorNotFound(starting_after)
        query = query.where(tuple_(time, ident) < tuple_(*cursor))
    rows = list(await session.scalars(query.order_by(time.desc(), ident.desc()).limit(limit + 1)))
    return rows[:limit], len(rows) > limit
