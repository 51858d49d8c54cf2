"""payplane_core.tasks.stop: background tasks end even when a cancel is swallowed."""

import asyncio
import logging

import pytest
from payplane_core.tasks import stop


async def swallows_cancels(times: int, swallowed: list[int]) -> None:
    """Runs on through its first ``times`` cancels, as a loop whose step sits in Python 3.11's
    ``asyncio.wait_for`` when the cancel arrives does."""
    while True:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            if len(swallowed) >= times:
                raise
            swallowed.append(1)


async def test_a_task_that_swallows_cancels_is_cancelled_until_it_ends():
    swallowed: list[int] = []
    task = asyncio.create_task(swallows_cancels(2, swallowed))
    await asyncio.sleep(0)
    async with asyncio.timeout(5):
        await stop(task, recancel_every=0.05)
    assert task.cancelled()
    assert len(swallowed) == 2


async def test_a_failed_task_is_logged_not_raised(caplog):
    async def fails():
        raise RuntimeError("broken")

    task = asyncio.create_task(fails())
    await asyncio.sleep(0)
    with caplog.at_level(logging.ERROR, logger="payplane_core.tasks"):
        await stop(task)
    assert "background task failed" in caplog.text
    assert "broken" in caplog.text


async def test_a_cancel_of_the_caller_still_propagates():
    swallowed: list[int] = []
    stubborn = asyncio.create_task(swallows_cancels(1000, swallowed))
    stopping = asyncio.create_task(stop(stubborn, recancel_every=0.01))
    await asyncio.sleep(0.1)
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping
    assert swallowed  # cancelled again and again until its caller was cancelled
    swallowed.extend([1] * 1000)  # from now on it gives in
    await stop(stubborn)
    assert stubborn.cancelled()
