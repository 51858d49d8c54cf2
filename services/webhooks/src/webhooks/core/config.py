from payplane_core.settings import ServiceSettings


class Settings(ServiceSettings):
    SERVICE_NAME: str = "webhooks"
    PORT: int = 8105
    DATABASE_URL: str = "postgresql+asyncpg://payplane:payplane@127.0.0.1:5432/payplane_logs"
    DB_POOL_SIZE: int = 10
    PAYMENTS_URL: str = "http://127.0.0.1:8101"
    # Provider webhook secrets come from the providers registry (decrypted there, kept here in
    # memory only) and are re-read after this many seconds, or sooner for an unknown provider.
    PROVIDERS_URL: str = "http://127.0.0.1:8104"
    PROVIDER_SECRETS_TTL_SECONDS: float = 30.0
    PROVIDER_SECRETS_MIN_REFRESH_SECONDS: float = 2.0
    INTERNAL_CALL_TIMEOUT_SECONDS: float = 5.0
    # Standard Webhooks: a timestamp further than this from now is stale (the library's 5 min
    # is the upper bound; this may only be stricter).
    WEBHOOK_TOLERANCE_SECONDS: int = 300
