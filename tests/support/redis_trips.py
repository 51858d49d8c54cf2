"""Counting this process's Redis round trips: every request redis-py writes (one command, one
MULTI, one pipeline) goes through one ``send_packed_command``. Round trips are the client's
batching, which Redis MONITOR (``redis_monitor``, for what was sent) cannot show."""

import contextlib
from collections.abc import Iterator

from redis.asyncio.connection import AbstractConnection


@contextlib.contextmanager
def round_trips(db: int) -> Iterator[list[str]]:
    """The requests written to Redis database ``db`` by this process meanwhile, each as the
    names of its commands (``"MULTI SET PTTL EXISTS EXEC"``)."""
    trips: list[str] = []
    send = AbstractConnection.send_packed_command

    async def counting(self, command, check_health=True):
        if self.db == db:
            trips.append(_names(command))
        return await send(self, command, check_health)

    AbstractConnection.send_packed_command = counting
    try:
        yield trips
    finally:
        AbstractConnection.send_packed_command = send


def _names(command) -> str:
    """The command names in a packed request (RESP arrays: ``*n``, then ``$len`` + value)."""
    data = command if isinstance(command, bytes | bytearray) else b"".join(command)
    lines, names, index = data.split(b"\r\n"), [], 0
    while index < len(lines) - 1:
        count = int(lines[index][1:])
        names.append(lines[index + 2].decode().upper())
        index += 1 + 2 * count
    return " ".join(names)
