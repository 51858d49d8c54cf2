"""payplane workers: the outbox relay and the merchant notifier.

Both are processes built with ``create_service_app`` (health, readiness, metrics, and for the
notifier an internal API); the pipeline itself runs as a background task in the lifespan.
"""
