from payplane_core.settings import LOCAL_DEFAULT_SECRET, CsvList, ServiceSettings
from pydantic import Field


class Settings(ServiceSettings):
    """One simulated provider; the same code runs as several named providers (sim-a, sim-b)."""

    SERVICE_NAME: str = "sim-a"
    PORT: int = 8201
    # The provider's own credentials: a third party, so not the platform's internal signature.
    SIM_API_KEY: str = LOCAL_DEFAULT_SECRET
    # Standard Webhooks secret (whsec_ + base64) the platform verifies outcome callbacks with.
    SIM_WEBHOOK_SECRET: str = "whsec_" + "bG9jYWwtb25seS1zaW11bGF0b3Itc2VjcmV0"
    SIM_WEBHOOK_URL: str = "http://127.0.0.1:8080/api/v1/payments/webhook"
    # Outcome timing (see simulator.rules): an ordinary outcome is sent after CALLBACK_DELAY,
    # the "fail after a delay" rule after FAIL_DELAY, the "time out" rule holds the request.
    SIM_CALLBACK_DELAY_MS: int = 50
    SIM_FAIL_DELAY_MS: int = 1500
    SIM_TIMEOUT_HOLD_SECONDS: float = 30.0
    # Callback redelivery until the platform answers 2xx: seconds between attempts.
    SIM_CALLBACK_RETRY_SCHEDULE: CsvList = Field(
        default_factory=lambda: ["0.5", "1", "2", "5", "10", "30", "60", "300"]
    )
    SIM_CALLBACK_TIMEOUT_SECONDS: float = 5.0

    @classmethod
    def secret_fields(cls) -> list[str]:
        return [*super().secret_fields(), "SIM_API_KEY"]

    @property
    def provider_name(self) -> str:
        return self.SERVICE_NAME

    @property
    def retry_schedule(self) -> list[float]:
        return [float(s) for s in self.SIM_CALLBACK_RETRY_SCHEDULE]
