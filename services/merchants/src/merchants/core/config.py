from payplane_core.settings import LOCAL_DEFAULT_SECRET, CsvList, ServiceSettings
from pydantic import Field


class Settings(ServiceSettings):
    SERVICE_NAME: str = "merchants"
    PORT: int = 8102
    DATABASE_URL: str = "postgresql+asyncpg://payplane:payplane@127.0.0.1:5432/payplane_merchants"
    DB_POOL_SIZE: int = 10
    # Used only to drop the gateway's cached copy of a key when it is revoked or rotated.
    REDIS_URL: str = "redis://127.0.0.1:6379/0"
    # AES-GCM keys for secrets at rest: the first encrypts, all decrypt (rotation).
    ENCRYPTION_KEYS: CsvList = Field(default_factory=lambda: [LOCAL_DEFAULT_SECRET])
    # How long the old key of a rotation keeps working.
    KEY_ROTATION_GRACE_SECONDS: int = 24 * 3600

    @classmethod
    def secret_fields(cls) -> list[str]:
        return [*super().secret_fields(), "ENCRYPTION_KEYS"]
