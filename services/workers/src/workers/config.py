"""Settings shared by the relay and the notifier: where RabbitMQ is and what the topology is."""

from payplane_core import messaging
from payplane_core.settings import CsvFloats, DatabaseSettings

# A list of seconds given in the environment as ``5,300,1800`` (floats so tests can compress).
SecondsList = CsvFloats


class WorkerSettings(DatabaseSettings):
    AMQP_URL: str = "amqp://guest:guest@127.0.0.1:5672/"
    # Names are settings (with the contract's defaults) so a test can run its own copy of the
    # topology in a shared vhost without stealing another stack's messages.
    # Queue arguments (quorum, delivery limit, dead letters) are payplane_core.messaging's.
    AMQP_EXCHANGE: str = messaging.EXCHANGE
    NOTIFIER_QUEUE: str = messaging.NOTIFIER_QUEUE.name
    NOTIFIER_BINDING: str = messaging.NOTIFIER_QUEUE.binding
    DEAD_LETTER_EXCHANGE: str = messaging.NOTIFIER_QUEUE.dead_letter_exchange
    DEAD_LETTER_QUEUE: str = messaging.NOTIFIER_QUEUE.dead_letter_queue
    # The providers service's queue: the relay declares it too (same names as that service's
    # AMQP_QUEUE, AMQP_ROUTING_KEY, AMQP_DEAD_LETTER), and drains the classic queue it replaces.
    PROVIDERS_QUEUE: str = messaging.PROVIDERS_QUEUE.name
    PROVIDERS_BINDING: str = messaging.PROVIDERS_QUEUE.binding
    PROVIDERS_DEAD_LETTER: str = messaging.PROVIDERS_QUEUE.dead_letter_queue
    PROVIDERS_QUEUE_REPLACES: str = messaging.PROVIDERS_QUEUE.replaces or ""
    AMQP_CONNECT_TIMEOUT_SECONDS: float = 5.0
    # Reconnection backoff after the broker went away: doubles up to this cap.
    AMQP_RECONNECT_MAX_SECONDS: float = 5.0
    # How often backlog gauges (outbox, deliveries) are read from the database.
    STATS_INTERVAL_SECONDS: float = 5.0
