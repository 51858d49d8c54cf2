"""Background tasks stopped for good."""

import asyncio
import logging

log = logging.getLogger(__name__)


async def stop(*tasks: asyncio.Task, recancel_every: float = 1.0) -> None:
    """Cancel the tasks and wait until each has ended, cancelling again while one runs on.

    One cancel is not always enough: on Python 3.11 ``asyncio.wait_for``, which redis-py wraps
    around each send when a socket timeout is set, returns its result instead of raising when
    the cancel arrives as the send finishes. A loop that relied on one cancel then ran on and
    held its process's shutdown up for ever. A task's own failure is logged, not raised; a
    cancel of the caller itself still propagates (``asyncio.wait`` does not swallow it)."""
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=recancel_every)
    for task in tasks:
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("background task failed", exc_info=error, extra={"task": task.get_name()})
