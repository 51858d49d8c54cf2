"""The merchant notifier: RabbitMQ events -> signed webhooks, every attempt recorded."""
