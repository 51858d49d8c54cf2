"""The outbox relay: payments database outbox rows -> RabbitMQ exchange ``payments``."""
