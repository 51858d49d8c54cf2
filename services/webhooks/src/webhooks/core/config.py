from payplane_core import platform
from payplane_core.settings import CsvList, DatabaseSettings
from pydantic import Field


class Settings(DatabaseSettings):
    SERVICE_NAME: str = "webhooks"
    PORT: int = platform.port("webhooks")
    # Provider webhooks come through the gateway; the CLI and the operator read the audit log.
    INTERNAL_ALLOWED_CALLERS: CsvList = Field(
        default_factory=lambda: ["gateway", "cli", "operator"]
    )
    DATABASE_URL: str = "postgresql+asyncpg://payplane:payplane@127.0.0.1:5432/payplane_logs"
    DB_POOL_SIZE: int = 4
    DB_MAX_OVERFLOW: int = 3
    PAYMENTS_URL: str = platform.local_url("payments")
    # Provider webhook secrets come from the providers registry (decrypted there, kept here in
    # memory only) and are re-read after this many seconds, or sooner for an unknown provider.
    PROVIDERS_URL: str = platform.local_url("providers")
    PROVIDER_SECRETS_TTL_SECONDS: float = 30.0
    PROVIDER_SECRETS_MIN_REFRESH_SECONDS: float = 2.0
    INTERNAL_CALL_TIMEOUT_SECONDS: float = 5.0
    # Standard Webhooks: a timestamp further than this from now is stale (the library's 5 min
    # is the upper bound; this may only be stricter).
    WEBHOOK_TOLERANCE_SECONDS: int = 300
    # Retention, run by every replica (batched, SKIP LOCKED): audit rows older than this,
    # except accepted ones still waiting to reach payments. 0 seconds: never.
    RETENTION_INTERVAL_SECONDS: float = 300.0
    WEBHOOK_LOG_RETENTION_DAYS: int = 90

    @classmethod
    def secret_fields(cls) -> list[str]:
        return [*super().secret_fields(), "INTERNAL_SIGNING_KEY"]
