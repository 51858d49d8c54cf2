"""One reconnecting session loop shared by both workers.

We reconnect ourselves instead of using aio-pika's robust connection: a publish or an ack in
flight when the broker goes away must fail loudly (so the relay reschedules the row and the
notifier leaves the message unacked), and a plain loop makes that visible and testable.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable

import aio_pika

from workers.config import WorkerSettings

log = logging.getLogger(__name__)

Session = Callable[[aio_pika.abc.AbstractConnection], Awaitable[None]]


class BrokerState:
    """Whether the worker currently holds a working connection (for ``/ready``)."""

    def __init__(self) -> None:
        self.connected = False

    async def check(self, _app: object = None) -> None:
        if not self.connected:
            raise ConnectionError("not connected to RabbitMQ")


async def run_forever(settings: WorkerSettings, session: Session, state: BrokerState) -> None:
    """Connect, run ``session`` until the connection breaks, wait, and do it again."""
    delay = 0.2
    while True:
        try:
            connection = await aio_pika.connect(
                settings.AMQP_URL, timeout=settings.AMQP_CONNECT_TIMEOUT_SECONDS
            )
        except (TimeoutError, OSError, aio_pika.exceptions.AMQPError) as exc:
            log.warning("broker unreachable", extra={"error": repr(exc), "retry_in": delay})
            await asyncio.sleep(delay)
            delay = min(delay * 2, settings.AMQP_RECONNECT_MAX_SECONDS)
            continue
        try:
            delay = 0.2
            await session(connection)  # sets state.connected once its topology is declared
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure: drop the connection and retry
            log.warning("broker session ended", extra={"error": repr(exc)})
        finally:
            state.connected = False
            await _close_quietly(connection)
        await asyncio.sleep(delay)


async def _close_quietly(connection: aio_pika.abc.AbstractConnection) -> None:
    try:
        await asyncio.wait_for(connection.close(), timeout=2)
    except Exception:  # noqa: BLE001, S110 - it is already broken; nothing left to do
        pass


async def wait_broken(
    connection: aio_pika.abc.AbstractConnection, channel: aio_pika.abc.AbstractChannel
) -> None:
    """Return (by raising) once the connection or the channel is gone, so the loop reconnects."""
    broken = asyncio.Event()
    for source in (connection, channel):
        source.close_callbacks.add(lambda *_: broken.set())
    if connection.is_closed or channel.is_closed:
        broken.set()
    await broken.wait()
    raise ConnectionError("broker connection or channel closed")
