"""The RabbitMQ topology, declared idempotently by every worker at (re)connection.

Quorum queues (not classic): they are replicated by Raft and fsync before confirming, which is
what "never lost" needs once there is more than one broker node, and they enforce a delivery
limit, so a message that crashes its consumer every time ends up in the dead letters instead of
looping forever. On one node they behave like durable classic queues.
"""

from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue

from workers.config import WorkerSettings


@dataclass(frozen=True)
class Topology:
    exchange: str
    queue: str
    binding: str
    dead_letter_exchange: str
    dead_letter_queue: str
    delivery_limit: int

    @classmethod
    def from_settings(cls, settings: WorkerSettings) -> "Topology":
        return cls(
            exchange=settings.AMQP_EXCHANGE,
            queue=settings.NOTIFIER_QUEUE,
            binding=settings.NOTIFIER_BINDING,
            dead_letter_exchange=settings.DEAD_LETTER_EXCHANGE,
            dead_letter_queue=settings.DEAD_LETTER_QUEUE,
            delivery_limit=settings.QUEUE_DELIVERY_LIMIT,
        )


async def declare(
    channel: AbstractChannel, topology: Topology
) -> tuple[AbstractExchange, AbstractQueue]:
    """Exchange, dead letters and the notifier queue; the same arguments every time."""
    exchange = await channel.declare_exchange(
        topology.exchange, aio_pika.ExchangeType.TOPIC, durable=True
    )
    dead_letters = await channel.declare_exchange(
        topology.dead_letter_exchange, aio_pika.ExchangeType.FANOUT, durable=True
    )
    dead_queue = await channel.declare_queue(
        topology.dead_letter_queue, durable=True, arguments={"x-queue-type": "quorum"}
    )
    await dead_queue.bind(dead_letters, routing_key="")
    queue = await channel.declare_queue(
        topology.queue,
        durable=True,
        arguments={
            "x-queue-type": "quorum",
            "x-dead-letter-exchange": topology.dead_letter_exchange,
            "x-delivery-limit": topology.delivery_limit,
        },
    )
    await queue.bind(exchange, routing_key=topology.binding)
    return exchange, queue
