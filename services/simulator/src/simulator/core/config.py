from payplane_core import platform
from payplane_core.settings import LOCAL_DEFAULT_SECRET, ServiceSettings
from pydantic import Field


class Settings(ServiceSettings):
    """One simulated provider; the same code runs as several named providers (sim-a, sim-b)."""

    SERVICE_NAME: str = "sim-a"
    PORT: int = platform.port("sim-a")
    # The provider's own credentials: a third party, so not the platform's internal signature.
    SIM_API_KEY: str = LOCAL_DEFAULT_SECRET
    # Standard Webhooks secret (whsec_ + base64) the platform verifies outcome callbacks with.
    SIM_WEBHOOK_SECRET: str = "whsec_" + "bG9jYWwtb25seS1zaW11bGF0b3Itc2VjcmV0"
    SIM_WEBHOOK_URL: str = platform.local_url(platform.INGRESS) + platform.PROVIDER_WEBHOOK_PATH
    # Outcome timing (see simulator.rules): an ordinary outcome is sent after CALLBACK_DELAY,
    # the "fail after a delay" rule after FAIL_DELAY, the "time out" rule holds the request.
    SIM_CALLBACK_DELAY_MS: int = 50
    SIM_FAIL_DELAY_MS: int = 1500
    SIM_TIMEOUT_HOLD_SECONDS: float = 30.0
    # Callback redelivery until the platform answers 2xx (simulator.retry): exponential backoff
    # from BASE doubling up to MAX between attempts, with jitter, never sooner than the
    # platform's Retry-After, for GIVE_UP seconds (hours, as real providers do).
    SIM_CALLBACK_BACKOFF_BASE_SECONDS: float = Field(default=0.5, gt=0)
    SIM_CALLBACK_BACKOFF_MAX_SECONDS: float = Field(default=600.0, gt=0)
    SIM_CALLBACK_GIVE_UP_SECONDS: float = Field(default=6 * 3600.0, gt=0)
    SIM_CALLBACK_TIMEOUT_SECONDS: float = 5.0

    @classmethod
    def secret_fields(cls) -> list[str]:
        return [*super().secret_fields(), "SIM_API_KEY", "SIM_WEBHOOK_SECRET"]

    @property
    def provider_name(self) -> str:
        return self.SERVICE_NAME
