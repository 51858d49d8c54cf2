from payplane_core import messaging, platform
from payplane_core.settings import LOCAL_DEFAULT_SECRET, CsvList, DatabaseSettings
from pydantic import Field


class Settings(DatabaseSettings):
    SERVICE_NAME: str = "providers"
    PORT: int = platform.port("providers")
    # webhooks reads provider secrets; the CLI and the operator register providers.
    INTERNAL_ALLOWED_CALLERS: CsvList = Field(
        default_factory=lambda: ["webhooks", "cli", "operator", "payments"]
    )
    DATABASE_URL: str = "postgresql+asyncpg://payplane:payplane@127.0.0.1:5432/payplane_providers"
    DB_POOL_SIZE: int = 8
    DB_MAX_OVERFLOW: int = 4
    REDIS_URL: str = "redis://127.0.0.1:6379/0"
    # AES-GCM keys for provider API keys and webhook secrets at rest (first encrypts, all decrypt).
    ENCRYPTION_KEYS: CsvList = Field(default_factory=lambda: [LOCAL_DEFAULT_SECRET])

    PAYMENTS_URL: str = platform.local_url("payments")
    # Empty: no per-merchant restriction (the merchants service is not consulted).
    MERCHANTS_URL: str = ""
    INTERNAL_CALL_TIMEOUT_SECONDS: float = 5.0

    # New payments arrive as ``payment.pending`` events on the outbox relay's exchange.
    CONSUMER_ENABLED: bool = True
    AMQP_URL: str = "amqp://guest:guest@127.0.0.1:5672/"
    # The topology is payplane_core.messaging's (the relay declares the same queue).
    AMQP_EXCHANGE: str = messaging.EXCHANGE
    AMQP_QUEUE: str = messaging.PROVIDERS_QUEUE.name
    AMQP_ROUTING_KEY: str = messaging.PROVIDERS_QUEUE.binding
    # Dead-letter exchange and queue (one name for both) of messages that failed too often.
    AMQP_DEAD_LETTER: str = messaging.PROVIDERS_QUEUE.dead_letter_queue
    # Payments routed at once (bounded concurrency: the rest wait in the queue). None holds a
    # database connection while it waits on a provider, so the pool needs no more than this.
    AMQP_PREFETCH: int = 16
    # A payment that cannot be settled now (payments unreachable, a provider's answer unknown)
    # goes back to the queue after this pause.
    RETRY_DELAY_SECONDS: float = 2.0

    # Per-provider circuit breakers, shared by every replica through Redis.
    BREAKER_PREFIX: str = "cb:provider:"
    BREAKER_WINDOW_SECONDS: float = 30.0
    # Providers' /health probed this often; a provider failing it is tried last.
    HEALTH_PROBE_SECONDS: float = 5.0

    @classmethod
    def secret_fields(cls) -> list[str]:
        return [*super().secret_fields(), "INTERNAL_SIGNING_KEY", "ENCRYPTION_KEYS"]
