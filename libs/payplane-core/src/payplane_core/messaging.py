"""The RabbitMQ topology of payment events, declared the same way by the relay and by every
consumer (declarations are idempotent; the arguments come from here only, because a queue
declared twice with different arguments is a PRECONDITION_FAILED channel error).

Every consumer queue is a quorum queue (replicated by Raft, fsynced before confirming) with a
delivery limit and its own dead-letter exchange and queue: a message that fails its consumer
``delivery_limit`` times, or that the consumer rejects as malformed, ends in that consumer's
dead letters for a human instead of being requeued forever. The relay declares the consumers'
queues too, so no event is published before its queues exist (nothing unroutable is lost when
a consumer has never started yet).
"""

import logging
from dataclasses import dataclass

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
)

log = logging.getLogger(__name__)

# A consumer that fails on the same message this many times will not succeed the next time.
DELIVERY_LIMIT = 20


@dataclass(frozen=True)
class ConsumerQueue:
    name: str
    binding: str  # routing key pattern on the events exchange
    dead_letter_exchange: str
    dead_letter_queue: str
    # The classic queue this one replaces (a queue's type cannot change in place): drained
    # into this one and deleted at declaration, so an existing broker upgrades by itself.
    replaces: str | None = None


@dataclass(frozen=True)
class Topology:
    exchange: str
    queues: tuple[ConsumerQueue, ...]
    delivery_limit: int = DELIVERY_LIMIT

    def queue_arguments(self, queue: ConsumerQueue) -> dict[str, str | int]:
        return {
            "x-queue-type": "quorum",
            "x-dead-letter-exchange": queue.dead_letter_exchange,
            "x-delivery-limit": self.delivery_limit,
        }


async def declare(
    channel: AbstractChannel, topology: Topology
) -> tuple[AbstractExchange, dict[str, AbstractQueue]]:
    """The events exchange and every queue of ``topology`` with its dead letters."""
    exchange = await channel.declare_exchange(
        topology.exchange, aio_pika.ExchangeType.TOPIC, durable=True
    )
    queues: dict[str, AbstractQueue] = {}
    for spec in topology.queues:
        dead_letters = await channel.declare_exchange(
            spec.dead_letter_exchange, aio_pika.ExchangeType.FANOUT, durable=True
        )
        dead_queue = await channel.declare_queue(
            spec.dead_letter_queue, durable=True, arguments={"x-queue-type": "quorum"}
        )
        await dead_queue.bind(dead_letters, routing_key="")
        queue = await channel.declare_queue(
            spec.name, durable=True, arguments=topology.queue_arguments(spec)
        )
        await queue.bind(exchange, routing_key=spec.binding)
        queues[spec.name] = queue
    return exchange, queues


async def retire_replaced(connection: AbstractConnection, topology: Topology) -> int:
    """Move what is left in each replaced (classic) queue into its successor, then delete it.

    Run after ``declare``: first unbound, so nothing new arrives; every message is republished
    to the successor queue with publisher confirms before it is acked. Returns how many
    messages were moved. Consumers are idempotent, so a crash halfway only duplicates. A
    failure is logged, never raised: the next connection tries again, and the caller (the
    relay) must not stop publishing because an old queue could not be retired."""
    moved = 0
    for spec in topology.queues:
        if spec.replaces is None:
            continue
        channel = await connection.channel(publisher_confirms=True)
        try:
            moved += await _drain(channel, topology, spec)
        except aio_pika.exceptions.ChannelNotFoundEntity:
            pass  # not there (any more): nothing to retire
        except aio_pika.exceptions.AMQPError as exc:
            log.warning(
                "could not retire a replaced queue",
                extra={"queue": spec.replaces, "error": repr(exc)},
            )
        finally:
            if not channel.is_closed:
                await channel.close()
    return moved


def fresh_copy(message: AbstractIncomingMessage) -> aio_pika.Message:
    """A message to publish again as new: same body, id and headers, none of the broker's
    bookkeeping (delivery count, deaths), persistent."""
    headers = {
        k: v for k, v in (message.headers or {}).items() if k not in ("x-delivery-count", "x-death")
    }
    return aio_pika.Message(
        message.body,
        headers=headers,
        content_type=message.content_type,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=message.message_id,
        type=message.type,
        timestamp=message.timestamp,
    )


async def _drain(channel: AbstractChannel, topology: Topology, spec: ConsumerQueue) -> int:
    old = await channel.declare_queue(spec.replaces, passive=True)
    await old.unbind(topology.exchange, routing_key=spec.binding)
    moved = 0
    while (message := await old.get(no_ack=False, fail=False)) is not None:
        await channel.default_exchange.publish(fresh_copy(message), routing_key=spec.name)
        await message.ack()
        moved += 1
    await old.delete(if_unused=False, if_empty=True)
    log.warning(
        "retired a replaced queue",
        extra={"queue": spec.replaces, "successor": spec.name, "moved": moved},
    )
    return moved


# The contract's names (each a setting of the services that use it, so a test can run its own
# copy of the topology in a shared vhost).
EXCHANGE = "payments"
PROVIDERS_QUEUE = ConsumerQueue(
    name="providers.payment-pending.quorum",
    binding="payment.pending",
    dead_letter_exchange="providers.payment-pending.dead-letter",
    dead_letter_queue="providers.payment-pending.dead-letter",
    replaces="providers.payment-pending",  # the classic queue of earlier versions
)
NOTIFIER_QUEUE = ConsumerQueue(
    name="notifier.payments",
    binding="payment.*",
    dead_letter_exchange="payments.dead-letter",
    dead_letter_queue="payments.dead-letter",
)
