"""Bodies of the internal registry API."""

from datetime import datetime

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field

NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"  # a Kubernetes resource name


class ProviderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    display_name: str | None = Field(default=None, max_length=200)
    endpoint: AnyHttpUrl
    api_key: str = Field(min_length=8, max_length=500)
    webhook_secret: str = Field(min_length=10, max_length=500)
    priority: int = Field(default=100, ge=0, le=10_000)
    weight: int = Field(default=1, ge=1, le=1000)
    currencies: list[str] = Field(default_factory=list, max_length=200)
    timeout_ms: int = Field(default=2000, ge=50, le=120_000)
    failure_threshold: int = Field(default=5, ge=1, le=1000)
    open_seconds: int = Field(default=30, ge=1, le=86_400)
    enabled: bool = True

    def currency_list(self) -> list[str]:
        for code in self.currencies:
            if len(code) != 3 or not code.isascii() or not code.isupper() or not code.isalpha():
                raise ValueError(f"{code!r} is not an ISO 4217 code")
        return self.currencies


class CircuitOut(BaseModel):
    open: bool
    retry_after_seconds: float


class ProviderOut(BaseModel):
    """Never the secrets."""

    name: str
    display_name: str
    endpoint: str
    priority: int
    weight: int
    currencies: list[str]
    timeout_ms: int
    failure_threshold: int
    open_seconds: int
    enabled: bool
    created_at: datetime
    updated_at: datetime
    circuit: CircuitOut | None = None
    healthy: bool | None = None


class ProviderList(BaseModel):
    data: list[ProviderOut]


class WebhookSecret(BaseModel):
    name: str
    webhook_secret: str


class WebhookSecrets(BaseModel):
    data: list[WebhookSecret]
