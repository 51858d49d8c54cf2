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
