from payplane_core import platform
from payplane_core.settings import LOCAL_DEFAULT_SECRET, CsvList, DatabaseSettings, EgressSettings
from pydantic import Field


class Settings(EgressSettings, DatabaseSettings):
    SERVICE_NAME: str = "merchants"
    PORT: int = platform.port("merchants")
    INTERNAL_ALLOWED_CALLERS: CsvList = Field(
        default_factory=lambda: ["gateway", "notifier", "providers", "cli", "operator"]
    )
    DATABASE_URL: str = "postgresql+asyncpg://payplane:payplane@127.0.0.1:5432/payplane_merchants"
    DB_POOL_SIZE: int = 3
    DB_MAX_OVERFLOW: int = 2
    # Used only to drop the gateway's cached copy of a key when it is revoked or rotated.
    REDIS_URL: str = "redis://127.0.0.1:6379/0"
    # AES-GCM keys for secrets at rest: the first encrypts, all decrypt (rotation).
    ENCRYPTION_KEYS: CsvList = Field(default_factory=lambda: [LOCAL_DEFAULT_SECRET])
    # How long the old key of a rotation keeps working.
    KEY_ROTATION_GRACE_SECONDS: int = 24 * 3600

    @classmethod
    def secret_fields(cls) -> list[str]:
        return [*super().secret_fields(), "ENCRYPTION_KEYS"]
