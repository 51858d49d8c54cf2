"""What a piece of code really sent to Redis, seen by Redis MONITOR (no mocks, no counting
wrappers): ``async with monitored(url) as seen: ...; await seen("cb:x")``."""

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from redis.asyncio import Redis

Seen = Callable[[str], Awaitable[list[str]]]


@asynccontextmanager
async def monitored(url: str) -> AsyncIterator[Seen]:
    """``await seen(text)``: the commands on ``url``'s database that mention ``text``, sent
    since MONITOR started or since the previous ``seen``. It ends at a sentinel command of its
    own, so everything sent before the call is in (MONITOR reports in execution order)."""
    async with Redis.from_url(url) as client, client.monitor() as monitor:
        db = client.connection_pool.connection_kwargs.get("db", 0)

        async def seen(text: str) -> list[str]:
            sentinel = f"monitor-sentinel-{secrets.token_hex(6)}"
            await client.exists(sentinel)
            commands = []
            async with asyncio.timeout(10):
                while sentinel not in (command := await monitor.next_command())["command"]:
                    if command["db"] == db and text in command["command"]:
                        commands.append(command["command"])
            return commands

        yield seen
