"""Several Redis Lua scripts in one round trip."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError


@dataclass(frozen=True, slots=True)
class ScriptCall:
    """One run of a script: what ``run_together`` batches."""

    script: AsyncScript
    keys: Sequence[Any]
    args: Sequence[Any] = ()

    async def run(self, redis: Redis) -> Any:
        """On its own (redis-py loads the script if the server does not know it)."""
        return await self.script(keys=self.keys, args=self.args, client=redis)


async def run_together(redis: Redis, calls: Sequence[ScriptCall]) -> list[Any]:
    """Each call's result, in order, from one round trip: the EVALSHAs pipelined without MULTI
    (each script is atomic, the batch is not). redis-py's own pipelining of scripts asks
    ``SCRIPT EXISTS`` first, a round trip more, every time; here a script the server does not
    know yet (NOSCRIPT: it did not run) is run again on its own, which loads it."""
    async with redis.pipeline(transaction=False) as pipe:
        for call in calls:
            pipe.evalsha(call.script.sha, len(call.keys), *call.keys, *call.args)
        results = await pipe.execute(raise_on_error=False)
    for index, (call, result) in enumerate(zip(calls, results, strict=True)):
        if isinstance(result, NoScriptError):
            results[index] = await call.run(redis)
    for result in results:
        if isinstance(result, Exception):
            raise result
    return results
