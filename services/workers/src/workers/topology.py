"""The workers' view of the payment-events topology (``payplane_core.messaging`` declares it).

The relay declares every consumer's queue (the notifier's and the providers service's), so an
event is never published before the queues that must receive it exist; each consumer declares
its own. The names are settings; the queue arguments are ``payplane_core.messaging``'s only.
"""

from payplane_core import messaging

from workers.config import WorkerSettings


def notifier_queue(settings: WorkerSettings) -> messaging.ConsumerQueue:
    return messaging.ConsumerQueue(
        name=settings.NOTIFIER_QUEUE,
        binding=settings.NOTIFIER_BINDING,
        dead_letter_exchange=settings.DEAD_LETTER_EXCHANGE,
        dead_letter_queue=settings.DEAD_LETTER_QUEUE,
    )


def providers_queue(settings: WorkerSettings) -> messaging.ConsumerQueue:
    return messaging.ConsumerQueue(
        name=settings.PROVIDERS_QUEUE,
        binding=settings.PROVIDERS_BINDING,
        dead_letter_exchange=settings.PROVIDERS_DEAD_LETTER,
        dead_letter_queue=settings.PROVIDERS_DEAD_LETTER,
        replaces=settings.PROVIDERS_QUEUE_REPLACES or None,
    )


def for_relay(settings: WorkerSettings) -> messaging.Topology:
    return messaging.Topology(
        exchange=settings.AMQP_EXCHANGE,
        queues=(notifier_queue(settings), providers_queue(settings)),
    )


def for_notifier(settings: WorkerSettings) -> messaging.Topology:
    return messaging.Topology(exchange=settings.AMQP_EXCHANGE, queues=(notifier_queue(settings),))
