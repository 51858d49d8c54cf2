from payplane_core import platform
from payplane_core.settings import LOCAL_DEFAULT_SECRET, CsvList, ServiceSettings
from pydantic import Field


class Settings(ServiceSettings):
    SERVICE_NAME: str = "gateway"
    PORT: int = platform.port("gateway")
    # Envoy sends the whole body of a write; payment bodies are small.
    MAX_BODY_BYTES: int = 64 * 1024
    REDIS_URL: str = "redis://127.0.0.1:6379/0"
    REDIS_TIMEOUT_SECONDS: float = 0.5
    MERCHANTS_URL: str = platform.local_url("merchants")
    MERCHANTS_TIMEOUT_SECONDS: float = 2.0
    # Signing secrets cached in Redis are encrypted with these (first encrypts, all decrypt).
    ENCRYPTION_KEYS: CsvList = Field(default_factory=lambda: [LOCAL_DEFAULT_SECRET])
    # A resolved key stays cached this long; revocation drops it at once, the TTL bounds it.
    KEY_CACHE_TTL_SECONDS: int = 30
    # Keys each gateway process remembers (the most recently used), so that a request needs
    # no read of the Redis entry: the admission script checks the entry is still the same.
    KNOWN_KEYS_MAX: int = Field(default=10_000, gt=0)
    # Unknown keys are remembered briefly so a flood of bad keys does not reach merchants.
    UNKNOWN_KEY_CACHE_TTL_SECONDS: int = 5
    # RFC 9421 "created" must be within this many seconds of now, either way (the contract).
    SIGNATURE_MAX_SKEW_SECONDS: int = 300
    # The scheme clients used at the ingress, for @scheme / @target-uri.
    PUBLIC_SCHEME: str = "http"
    # The breaker the payments service trips with its own failures; the gateway only reads it.
    PAYMENTS_BREAKER: str = "cb:payments"
    # Half-open, one probe at a time is let through; a probe whose outcome payments never
    # reports (lost, crashed) frees its slot after this long. Longer than a payment creation.
    PAYMENTS_BREAKER_PROBE_LEASE_SECONDS: float = Field(default=5.0, gt=0)

    @classmethod
    def secret_fields(cls) -> list[str]:
        return [*super().secret_fields(), "INTERNAL_SIGNING_KEY", "ENCRYPTION_KEYS"]
