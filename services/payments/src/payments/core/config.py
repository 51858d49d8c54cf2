from payplane_core.settings import ServiceSettings


class Settings(ServiceSettings):
    SERVICE_NAME: str = "payments"
    PORT: int = 8101
    DATABASE_URL: str = "postgresql+asyncpg://payplane:payplane@127.0.0.1:5432/payplane_payments"
    DB_POOL_SIZE: int = 10
    # Keys are kept at least this long (IETF idempotency-key draft: "at least 24 hours").
    IDEMPOTENCY_TTL_HOURS: int = 24
    # An in-flight key whose request died is taken over after this long.
    IDEMPOTENCY_LOCK_SECONDS: int = 60
    # Payment-creation failures (5xx) are counted into the Redis breaker PAYMENTS_BREAKER, which
    # the gateway reads to fail fast with 503 while it is open. Unset: nothing is reported.
    REDIS_URL: str | None = None
    PAYMENTS_BREAKER: str = "cb:payments"
    BREAKER_FAILURE_THRESHOLD: int = 5
    BREAKER_WINDOW_SECONDS: float = 10.0
    BREAKER_OPEN_SECONDS: float = 30.0
