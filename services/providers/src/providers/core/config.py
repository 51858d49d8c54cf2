from payplane_core.settings import LOCAL_DEFAULT_SECRET, CsvList, ServiceSettings
from pydantic import Field


class Settings(ServiceSettings):
    SERVICE_NAME: str = "providers"
    PORT: int = 8104
    DATABASE_URL: str = "postgresql+asyncpg://payplane:payplane@127.0.0.1:5432/payplane_providers"
    DB_POOL_SIZE: int = 20
    REDIS_URL: str = "redis://127.0.0.1:6379/0"
    # AES-GCM keys for provider API keys and webhook secrets at rest (first encrypts, all decrypt).
    ENCRYPTION_KEYS: CsvList = Field(default_factory=lambda: [LOCAL_DEFAULT_SECRET])

    PAYMENTS_URL: str = "http://127.0.0.1:8101"
    # Empty: no per-merchant restriction (the merchants service is not consulted).
    MERCHANTS_URL: str = ""
    INTERNAL_CALL_TIMEOUT_SECONDS: float = 5.0

    # New payments arrive as ``payment.pending`` events on the outbox relay's exchange.
    CONSUMER_ENABLED: bool = True
    AMQP_URL: str = "amqp://guest:guest@127.0.0.1:5672/"
    AMQP_EXCHANGE: str = "payments"
    AMQP_QUEUE: str = "providers.payment-pending"
    AMQP_ROUTING_KEY: str = "payment.pending"
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
        return [*super().secret_fields(), "ENCRYPTION_KEYS"]
