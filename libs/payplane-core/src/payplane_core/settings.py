"""Settings shared by every service (pydantic-settings, UPPER_CASE, ``.env`` support)."""

from enum import StrEnum
from typing import Annotated

from pydantic import BeforeValidator, Field, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# A value that is fine on a laptop and must never reach a real deployment.
LOCAL_DEFAULT_SECRET = "changethis-local-only"  # noqa: S105 - refused outside local mode


class Environment(StrEnum):
    LOCAL = "local"
    TEST = "test"
    PRODUCTION = "production"


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


# A list given in the environment as ``a,b,c`` (NoDecode: not parsed as JSON first).
CsvList = Annotated[list[str], NoDecode, BeforeValidator(_split_csv)]


class ServiceSettings(BaseSettings):
    """Base class: one subclass per service in ``<service>/core/config.py``."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    SERVICE_NAME: str = "payplane"
    ENVIRONMENT: Environment = Environment.LOCAL
    LOG_LEVEL: str = "INFO"
    HOST: str = "127.0.0.1"
    PORT: int = 8000
    # Largest request body a service reads; Envoy enforces its own limit first.
    MAX_BODY_BYTES: int = 64 * 1024

    # HMAC secrets for the internal signature. The first one signs; all of them verify, so a
    # secret can be rotated by prepending the new one, rolling out, then dropping the old one.
    INTERNAL_SIGNING_SECRETS: CsvList = Field(default_factory=lambda: [LOCAL_DEFAULT_SECRET])
    INTERNAL_SIGNATURE_MAX_AGE_SECONDS: int = 30

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> "ServiceSettings":
        if self.ENVIRONMENT == Environment.PRODUCTION:
            for name in self.secret_fields():
                value = getattr(self, name)
                values = value if isinstance(value, list) else [value]
                if not values or any(str(v) == LOCAL_DEFAULT_SECRET or not v for v in values):
                    raise ValueError(f"{name} must be set to a real secret outside local mode")
        return self

    @classmethod
    def secret_fields(cls) -> list[str]:
        """Fields that must not keep the local default outside local mode (extend per service)."""
        return ["INTERNAL_SIGNING_SECRETS"]
