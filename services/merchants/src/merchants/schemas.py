"""Bodies of the internal merchants API."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, StringConstraints

# A Kubernetes resource name (DNS-1123 label): the Merchant custom resource's metadata.name.
Slug = Annotated[
    str,
    StringConstraints(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"),
]
ProviderName = Annotated[
    str, StringConstraints(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
]
WebhookUrl = Annotated[AnyHttpUrl, Field(max_length=2048)]


class RateLimit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    requests_per_second: float = Field(default=10, gt=0, le=100_000)
    burst: int = Field(default=20, ge=1, le=1_000_000)


class Quota(BaseModel):
    model_config = ConfigDict(extra="forbid")

    payments_per_month: int = Field(default=10_000, ge=0, le=10**12)


class MerchantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Slug
    # The caller's own id for this merchant (the operator: the resource's uid); idempotent.
    external_ref: str | None = Field(default=None, min_length=1, max_length=100)
    display_name: str | None = Field(default=None, min_length=1, max_length=200)
    plan: str = Field(default="standard", min_length=1, max_length=40)
    webhook_url: WebhookUrl | None = None
    rate_limit: RateLimit = Field(default_factory=RateLimit)
    quota: Quota = Field(default_factory=Quota)
    allowed_providers: list[ProviderName] = Field(default_factory=list, max_length=50)


class MerchantUpdate(BaseModel):
    """Only the fields given change (what ``payplane apply -f`` sends for an existing merchant)."""

    model_config = ConfigDict(extra="forbid")

    display_name: str | None = Field(default=None, min_length=1, max_length=200)
    plan: str | None = Field(default=None, min_length=1, max_length=40)
    webhook_url: WebhookUrl | None = None
    rate_limit: RateLimit | None = None
    quota: Quota | None = None
    allowed_providers: list[ProviderName] | None = Field(default=None, max_length=50)


class MerchantOut(BaseModel):
    id: str
    name: str
    external_ref: str | None = None
    display_name: str
    plan: str
    webhook_url: str | None
    rate_limit: RateLimit
    quota: Quota
    allowed_providers: list[str]
    status: str
    created_at: datetime
    updated_at: datetime


class Credentials(BaseModel):
    """The full secrets: returned once, at creation or rotation, never stored in clear."""

    merchant_id: str
    api_key: str
    api_key_id: str
    read_key: str
    read_key_id: str
    signing_secret: str
    webhook_secret: str


class MerchantCreated(BaseModel):
    merchant: MerchantOut
    # None when an external_ref named a merchant that already existed (secrets are shown once).
    credentials: Credentials | None


class WebhookTarget(BaseModel):
    merchant_id: str
    webhook_url: str | None
    webhook_secret: str
    # The secret the last rotation replaced, while its grace lasts: sign with both.
    previous_webhook_secret: str | None = None


class KeyOut(BaseModel):
    id: str
    merchant_id: str
    kind: Literal["api", "read"]
    prefix: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    replaced_by: str | None
    active: bool


class KeyIssue(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["api", "read"]
    expires_in_seconds: int | None = Field(default=None, ge=1, le=10 * 365 * 86400)


class KeyIssued(BaseModel):
    key: KeyOut
    secret_key: str
    signing_secret: str | None


class KeyRotate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grace_seconds: int | None = Field(default=None, ge=0, le=30 * 86400)


class KeyRotated(BaseModel):
    key: KeyOut
    secret_key: str
    signing_secret: str | None
    old_key: KeyOut


class CredentialsRotate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grace_seconds: int | None = Field(default=None, ge=0, le=30 * 86400)


class KeyResolve(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key_hash: str = Field(pattern=r"^[0-9a-f]{64}$")


class ResolvedKey(BaseModel):
    """What the gateway needs to authorize a request made with one key."""

    key_id: str
    key_hash: str
    kind: Literal["api", "read"]
    scopes: list[str]
    merchant_id: str
    merchant_status: str
    expires_at: float | None  # epoch seconds
    revoked: bool
    signing_secret: str | None
    rate_limit: RateLimit
    quota: Quota


class Usage(BaseModel):
    merchant_id: str
    period: str
    payments: int
    payments_per_month: int
    remaining: int
