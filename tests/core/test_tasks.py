"""payplane_core.tasks.stop: background tasks end even when a cancel is swallowed."""

import asyncio
import logging

import pytest
from payplane_core.tasks import stop


class Stubborn:
    """A loop that runs on through its first ``times`` cancels, as one whose step sits in Python
    3.11's ``asyncio.wait_for`` when the cancel arrives does."""

    def __init__(self, times: int) -> None:
        self.times, self.swallowed = times, 0
        self.started, self.swallowed_one = asyncio.Event(), asyncio.Event()

    async def run(self) -> None:
        self.started.set()
        while True:
            try:
                await asyncio.Event().wait()  # its work: until cancelled
            except asyncio.CancelledError:
                if self.swallowed >= self.times:
                    raise
                self.swallowed += 1
                self.swallowed_one.set()


async def test_a_task_that_swallows_cancels_is_cancelled_until_it_ends():
    stubborn = Stubborn(times=2)
    task = asyncio.create_task(stubborn.run())
    await stubborn.started.wait()
    async with asyncio.timeout(5):
        await stop(task, recancel_every=0.05)
    assert task.cancelled()
    assert stubborn.swallowed == 2


async def test_a_failed_task_is_logged_not_raised(caplog):
    async def fails():
        raise RuntimeError("broken")

    task = asyncio.create_task(fails())
    await asyncio.wait([task])
    with caplog.at_level(logging.ERROR, logger="payplane_core.tasks"):
        await stop(task)
    assert "background task failed" in caplog.text
    assert "broken" in caplog.text


async def test_a_cancel_of_the_caller_still_propagates():
    stubborn = Stubborn(times=1000)
    task = asyncio.create_task(stubborn.run())
    await stubborn.started.wait()
    stopping = asyncio.create_task(stop(task, recancel_every=0.01))
    await stubborn.swallowed_one.wait()  # stop() is at work on it
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping
    stubborn.times = 0  # from now on it gives in
    await stop(task)
    assert task.cancelled()
