"""Settings shared by every service (pydantic-settings, UPPER_CASE, ``.env`` support).

The environment defaults to production: a deployment that forgets to say what it is gets the
strict checks. ``ENVIRONMENT=local`` (the local stack, the tests) is the only way to run with
the placeholder secrets of the ``.env.example`` files.
"""

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BeforeValidator, Field, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from payplane_core.egress import parse_allowlist
from payplane_core.internal_auth import load_private_key, parse_caller_keys
from payplane_core.text import split_csv

if TYPE_CHECKING:
    import httpx

    from payplane_core.internal_client import InternalSigner

# A value that is fine on a laptop and must never reach a real deployment.
LOCAL_DEFAULT_SECRET = "changethis-local-only"  # noqa: S105 - refused outside local mode
# Placeholders that were ever shipped in examples or defaults: refused outside local mode too.
EXAMPLE_SECRETS = frozenset(
    {
        LOCAL_DEFAULT_SECRET,
        "change-me",
        "changeme",
        "sk_sim_change_me",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "whsec_bG9jYWwtb25seS1zaW11bGF0b3Itc2VjcmV0",
    }
)
# Shorter secrets are refused outside local mode (32 characters of base64url: 192 bits).
MIN_SECRET_LENGTH = 32


class Environment(StrEnum):
    LOCAL = "local"
    TEST = "test"
    PRODUCTION = "production"


def _split_csv(value: object) -> object:
    return split_csv(value) if isinstance(value, str) else value


# A list given in the environment as ``a,b,c`` (NoDecode: not parsed as JSON first).
CsvList = Annotated[list[str], NoDecode, BeforeValidator(_split_csv)]
CsvFloats = Annotated[list[float], NoDecode, BeforeValidator(_split_csv)]


def weak_secret(value: str) -> str | None:
    """Why ``value`` must not be used as a secret outside local mode, or None."""
    if value in EXAMPLE_SECRETS or "change" in value.lower():
        return "is a default or example value"
    if len(value) < MIN_SECRET_LENGTH:
        return f"is shorter than {MIN_SECRET_LENGTH} characters"
    return None


class ServiceSettings(BaseSettings):
    """Base class: one subclass per service in ``<service>/core/config.py``."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # Also the service's name in the internal signature: who it signs as, what it is the
    # audience of.
    SERVICE_NAME: str = "payplane"
    ENVIRONMENT: Environment = Environment.PRODUCTION
    LOG_LEVEL: str = "INFO"
    HOST: str = "127.0.0.1"
    PORT: int = 8000
    # Largest request body a service reads; Envoy enforces its own limit first.
    MAX_BODY_BYTES: int = 64 * 1024

    # Internal signature (see payplane_core.internal_auth). This process's own Ed25519 private
    # key, needed by services that call others (secret_fields() lists it there).
    INTERNAL_SIGNING_KEY: str = ""
    # Public keys of the callers, ``caller:<key>,caller:<key>``; a caller may have two during a
    # rotation. Only callers also in INTERNAL_ALLOWED_CALLERS are accepted.
    INTERNAL_CALLER_KEYS: CsvList = Field(default_factory=list)
    # Who may call this service at all (each service sets its own default).
    INTERNAL_ALLOWED_CALLERS: CsvList = Field(default_factory=list)
    INTERNAL_SIGNATURE_MAX_AGE_SECONDS: int = 30

    @property
    def local(self) -> bool:
        return self.ENVIRONMENT != Environment.PRODUCTION

    @model_validator(mode="after")
    def _check_internal_keys(self) -> "ServiceSettings":
        parse_caller_keys(self.INTERNAL_CALLER_KEYS)  # a malformed entry stops the start
        if self.INTERNAL_SIGNING_KEY:
            load_private_key(self.INTERNAL_SIGNING_KEY)
        return self

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> "ServiceSettings":
        if self.local:
            return self
        for name in self.secret_fields():
            value = getattr(self, name)
            values = value if isinstance(value, list) else [value]
            if not values:
                raise ValueError(f"{name} must be set outside local mode")
            for item in values:
                if reason := weak_secret(str(item)):
                    raise ValueError(f"{name} {reason}; set a real secret outside local mode")
        return self

    @classmethod
    def secret_fields(cls) -> list[str]:
        """Fields that must hold real secrets outside local mode (extend per service)."""
        return []

    def internal_keys(self) -> dict:
        """Public keys of the callers this service accepts."""
        allowed = set(self.INTERNAL_ALLOWED_CALLERS)
        keys = parse_caller_keys(self.INTERNAL_CALLER_KEYS)
        return {caller: k for caller, k in keys.items() if caller in allowed}

    def internal_signer(self, audience: str) -> "InternalSigner":
        """httpx auth signing this service's requests to ``audience``."""
        from payplane_core.internal_client import InternalSigner  # noqa: PLC0415 - httpx only here

        key = self.INTERNAL_SIGNING_KEY
        return InternalSigner(key, caller=self.SERVICE_NAME, audience=audience)

    def internal_http(
        self, audience: str, base_url: str, *, timeout: float, **options: Any
    ) -> "httpx.AsyncClient":
        """An HTTP client to the service ``audience`` at ``base_url``, every request signed."""
        from payplane_core.clients import internal_http  # noqa: PLC0415 - httpx only here

        signer = self.internal_signer(audience)
        return internal_http(base_url, signer=signer, timeout=timeout, **options)


class DatabaseSettings(ServiceSettings):
    """A service with a PostgreSQL pool. Every process's pool is bounded here, so the sum over
    the platform stays under ``max_connections`` (``tests/core/test_connection_budget.py``
    adds them up from the stack's real environment; on Kubernetes the chart sizes them for
    the CloudNativePG Pooler in front of each cluster)."""

    # Connections kept open, and how many more a burst may open (closed again when returned).
    DB_POOL_SIZE: int = Field(default=5, ge=1)
    DB_MAX_OVERFLOW: int = Field(default=5, ge=0)
    # Waiting longer than this for a free connection is a 503 with Retry-After (see
    # payplane_core.dberrors), well before the ingress gives up on the request (504).
    DB_POOL_TIMEOUT_SECONDS: float = Field(default=3.0, gt=0)

    @property
    def db_max_connections(self) -> int:
        return self.DB_POOL_SIZE + self.DB_MAX_OVERFLOW

    def db_pool(self) -> dict[str, int | float]:
        """Keyword arguments for ``payplane_core.db.create_engine``."""
        return {
            "pool_size": self.DB_POOL_SIZE,
            "max_overflow": self.DB_MAX_OVERFLOW,
            "pool_timeout": self.DB_POOL_TIMEOUT_SECONDS,
        }


class EgressSettings(BaseSettings):
    """Mixin for a service that validates or calls merchant-chosen URLs (payplane_core.egress)."""

    # Networks a webhook URL may point at although they are not public (local development and
    # tests only, e.g. 127.0.0.1/32). Empty: only public addresses.
    WEBHOOK_URL_ALLOWLIST: CsvList = Field(default_factory=list)

    @model_validator(mode="after")
    def _allowlist_only_locally(self) -> "EgressSettings":
        if self.WEBHOOK_URL_ALLOWLIST and getattr(self, "local", True) is False:
            raise ValueError("WEBHOOK_URL_ALLOWLIST is for local development only")
        parse_allowlist(self.WEBHOOK_URL_ALLOWLIST)  # a malformed entry stops the start
        return self
