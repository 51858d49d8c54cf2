"""The relay's wake-ups: PostgreSQL LISTEN on the outbox's channel, on a connection of its own.

The payments database NOTIFYs ``outbox_events`` in the transaction of every outbox insert (a
statement-level trigger, payments migration 0004). PostgreSQL delivers it at commit only, and
one per transaction at most (identical notifications are folded). Each one sets ``wake``; the
relay clears it before it claims, so a notification that arrives during a claim is not lost
(the next wait returns at once) and any number of them during a claim make one more claim.

The connection is plain asyncpg, opened from the URL, not one of the engine's pooled ones: it
must stay in a session for as long as it listens (a pooled connection goes back to the pool,
is reset, and may be replaced at any checkout), it must not take a slot the claims need, and
its loss must be seen at once (asyncpg's termination listener). A connection that dies
silently is found by a ``SELECT 1`` when nothing has come for ``check_every`` seconds. Either
way it is opened again with backoff, and on every (re)connect ``wake`` is set: whatever was
committed while nobody listened is claimed then. Meanwhile the relay's fallback poll runs.
"""

import asyncio
import contextlib
import logging

import asyncpg
from payplane_core.db import asyncpg_dsn
from prometheus_client import Counter, Gauge

log = logging.getLogger(__name__)

CHANNEL = "outbox_events"
APPLICATION_NAME = "payplane-relay-listener"  # in pg_stat_activity
FIRST_RETRY_SECONDS = 0.2

NOTIFIED = Counter(
    "payplane_relay_notifications_total", "Outbox NOTIFYs received (one per committed insert)"
)
LISTENING = Gauge(
    "payplane_relay_listening", "1 while the relay listens for outbox notifications, else 0"
)
CONNECTS = Counter(
    "payplane_relay_listener_connects_total", "Times the relay's listener (re)started listening"
)


class Listener:
    def __init__(
        self,
        url: str,
        wake: asyncio.Event,
        *,
        check_every: float,
        reconnect_max: float,
        connect_timeout: float,
    ) -> None:
        self.dsn = asyncpg_dsn(url)
        self.wake = wake
        self.check_every = check_every
        self.reconnect_max = reconnect_max
        self.connect_timeout = connect_timeout
        self.listening = False
        self._listened = False  # the last connection got as far as LISTEN

    async def check(self, _app: object = None) -> None:
        """Readiness: the relay is degraded to its fallback poll while it does not listen."""
        if not self.listening:
            raise ConnectionError("not listening for outbox notifications")

    async def run(self) -> None:
        """Listen, and listen again after any loss, forever."""
        delay = FIRST_RETRY_SECONDS
        while True:
            try:
                connection = await asyncpg.connect(
                    self.dsn,
                    timeout=self.connect_timeout,
                    server_settings={"application_name": APPLICATION_NAME},
                )
            except Exception as exc:  # noqa: BLE001 - any failure: try again later
                log.warning("outbox listener cannot connect", extra={"error": repr(exc)})
            else:
                try:
                    await self._listen(connection)
                except Exception as exc:  # noqa: BLE001 - any failure: connect again
                    log.warning("outbox listener lost", extra={"error": repr(exc)})
                finally:
                    self._set_listening(False)
                    await _close_quietly(connection)
                if self._listened:
                    delay = FIRST_RETRY_SECONDS
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.reconnect_max)

    async def _listen(self, connection: asyncpg.Connection) -> None:
        self._listened = False
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _connection: lost.set())
        await connection.add_listener(CHANNEL, self._notified)
        self._listened = True
        self._set_listening(True)
        CONNECTS.inc()
        self.wake.set()  # what was committed while nobody listened
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.check_every):
                    await lost.wait()
            if lost.is_set() or connection.is_closed():
                raise ConnectionError("listener connection closed")
            async with asyncio.timeout(self.connect_timeout):
                await connection.fetchval("SELECT 1")

    def _notified(self, *_args: object) -> None:
        NOTIFIED.inc()
        self.wake.set()

    def _set_listening(self, listening: bool) -> None:
        self.listening = listening
        LISTENING.set(int(listening))


async def _close_quietly(connection: asyncpg.Connection) -> None:
    if connection.is_closed():
        return
    try:
        async with asyncio.timeout(2):
            await connection.close()
    except Exception:  # noqa: BLE001 - it is going away either way
        connection.terminate()
