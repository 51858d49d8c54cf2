"""Writes that arrive together go to the database together, and none waits for one to come.

The first write starts at once; those arriving while its statement runs wait for it, then go
in the next statement, all of them. Under load that is one round trip (and one commit) for many
writes; alone, a write costs what it did. The notifier accepts messages and records attempts
this way: RabbitMQ hands a burst of messages over at once, and their attempts end together.
"""

import asyncio
from collections.abc import Awaitable, Callable
from contextvars import Context
from typing import Generic, TypeVar

from payplane_core import dberrors
from prometheus_client import Histogram

Item = TypeVar("Item")
Result = TypeVar("Result")


class Bursts(Generic[Item, Result]):
    """``await bursts(item)``: ``write(items)`` on every item waiting, one result per item.

    A burst the database refuses for something in its data (not for being away or overloaded,
    ``dberrors.classify``) is written again one item at a time, so a bad item fails only itself.
    Any other failure is every waiting item's.
    """

    def __init__(
        self, write: Callable[[list[Item]], Awaitable[list[Result]]], *, sizes: Histogram
    ) -> None:
        self.write = write
        self.sizes = sizes
        self.waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self.writing: asyncio.Task | None = None

    async def __call__(self, item: Item) -> Result:
        written: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self.waiting.append((item, written))
        if self.writing is None:  # in a context of its own: no one caller's trace or request id
            self.writing = asyncio.create_task(self._write_waiting(), context=Context())
        return await written

    async def _write_waiting(self) -> None:
        burst: list[tuple[Item, asyncio.Future[Result]]] = []
        try:
            while self.waiting:
                burst, self.waiting = self.waiting, []
                self.sizes.observe(len(burst))
                await self._write(burst)
        finally:
            self.writing = None
            # Cancelled mid-write (shutdown): nobody is left waiting (a no-op once written).
            for _, written in [*burst, *self.waiting]:
                written.cancel()
            self.waiting = []

    async def _write(self, burst: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        try:
            results = await self.write([item for item, _ in burst])
        except Exception as exc:  # noqa: BLE001 - each caller decides what its failure means
            if len(burst) > 1 and dberrors.classify(exc) is not dberrors.Fault.INFRASTRUCTURE:
                for one in burst:
                    await self._write([one])
                return
            for _, written in burst:
                if not written.done():
                    written.set_exception(exc)
            return
        for (_, written), result in zip(burst, results, strict=True):
            if not written.done():
                written.set_result(result)
