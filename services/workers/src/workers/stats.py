"""Saturation gauges read from the database on a timer (a scrape must never wait on SQL)."""

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


async def refresh_forever(refresh: Callable[[], Awaitable[None]], *, every: float) -> None:
    while True:
        try:
            await refresh()
        except Exception as exc:  # noqa: BLE001 - stale gauges beat a dead loop; the next try may work
            log.warning("stats refresh failed", extra={"error": repr(exc)})
        await asyncio.sleep(every)
