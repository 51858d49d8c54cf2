"""Settings shared by the relay and the notifier: where RabbitMQ is and what the topology is."""

from payplane_core.settings import CsvFloats, DatabaseSettings

# A list of seconds given in the environment as ``5,300,1800`` (floats so tests can compress).
SecondsList = CsvFloats


class WorkerSettings(DatabaseSettings):
    AMQP_URL: str = "amqp://guest:guest@127.0.0.1:5672/"
    # Names are settings (with the contract's defaults) so a test can run its own copy of the
    # topology in a shared vhost without stealing another stack's messages.
    AMQP_EXCHANGE: str = "payments"
    NOTIFIER_QUEUE: str = "notifier.payments"
    NOTIFIER_BINDING: str = "payment.*"
    DEAD_LETTER_EXCHANGE: str = "payments.dead-letter"
    DEAD_LETTER_QUEUE: str = "payments.dead-letter"
    # A message redelivered this many times (a consumer crashing on it) goes to the dead letters.
    QUEUE_DELIVERY_LIMIT: int = 20
    AMQP_CONNECT_TIMEOUT_SECONDS: float = 5.0
    # Reconnection backoff after the broker went away: doubles up to this cap.
    AMQP_RECONNECT_MAX_SECONDS: float = 5.0
    # How often backlog gauges (outbox, deliveries) are read from the database.
    STATS_INTERVAL_SECONDS: float = 5.0
