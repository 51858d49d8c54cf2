from payplane_core import platform
from payplane_core.settings import CsvList, DatabaseSettings
from pydantic import Field


class Settings(DatabaseSettings):
    SERVICE_NAME: str = "payments"
    PORT: int = platform.port("payments")
    # Merchant requests come through the gateway; providers and webhooks report events.
    INTERNAL_ALLOWED_CALLERS: CsvList = Field(
        default_factory=lambda: ["gateway", "providers", "webhooks"]
    )
    DATABASE_URL: str = "postgresql+asyncpg://payplane:payplane@127.0.0.1:5432/payplane_payments"
    DB_POOL_SIZE: int = 6
    DB_MAX_OVERFLOW: int = 4
    # Keys are kept at least this long (IETF idempotency-key draft: "at least 24 hours").
    IDEMPOTENCY_TTL_HOURS: int = 24
    # An in-flight key whose request died is taken over after this long.
    IDEMPOTENCY_LOCK_SECONDS: int = 60
    # Payment-creation failures (5xx) are counted into the Redis breaker PAYMENTS_BREAKER, which
    # the gateway reads to fail fast with 503 while it is open. Unset: nothing is reported.
    REDIS_URL: str | None = None
    PAYMENTS_BREAKER: str = "cb:payments"
    BREAKER_FAILURE_THRESHOLD: int = 5
    BREAKER_WINDOW_SECONDS: float = 10.0
    # Opened, it refuses everything for MIN_OPEN seconds, then lets one probe through
    # (half-open, marked by the gateway): its success closes it, a failure re-opens it for
    # twice as long, up to OPEN.
    BREAKER_MIN_OPEN_SECONDS: float = Field(default=2.0, gt=0)
    BREAKER_OPEN_SECONDS: float = 30.0

    # Payments under way kept as last written here, so a status change needs no read first
    # (payments.snapshots; the change's compare-and-set checks them). 0: always read.
    PAYMENT_SNAPSHOTS: int = Field(default=10_000, ge=0)

    # Reconciliation (payments.reconcile), the safety net for lost events and callbacks.
    PROVIDERS_URL: str = platform.local_url("providers")
    RECONCILE_ENABLED: bool = True
    # A payment still pending / processing this long after its last change is looked at.
    RECONCILE_PENDING_AFTER_SECONDS: float = Field(default=60.0, gt=0)
    RECONCILE_PROCESSING_AFTER_SECONDS: float = Field(default=60.0, gt=0)
    # A provider unable to tell a processing payment's outcome this long: the payment fails.
    RECONCILE_GIVE_UP_SECONDS: float = Field(default=3600.0, gt=0)
    # Checks of one payment back off from BASE, doubling, up to MAX.
    RECONCILE_BACKOFF_BASE_SECONDS: float = Field(default=5.0, gt=0)
    RECONCILE_BACKOFF_MAX_SECONDS: float = Field(default=300.0, gt=0)
    # A claimed payment belongs to its replica this long (longer than one check can take).
    RECONCILE_LEASE_SECONDS: float = Field(default=120.0, gt=0)
    RECONCILE_INTERVAL_SECONDS: float = Field(default=2.0, gt=0)
    RECONCILE_BATCH_SIZE: int = Field(default=50, ge=1)
    # Payments checked at once: each may wait on a provider, none holds a connection meanwhile.
    RECONCILE_CONCURRENCY: int = Field(default=4, ge=1)
    # Routing again may wait on provider time-outs.
    RECONCILE_CALL_TIMEOUT_SECONDS: float = Field(default=30.0, gt=0)
    # Retention, run by every replica (batched, SKIP LOCKED): expired idempotency keys, and
    # outbox rows published more than OUTBOX_RETENTION_HOURS ago. 0 seconds: never.
    RETENTION_INTERVAL_SECONDS: float = 300.0
    OUTBOX_RETENTION_HOURS: int = 168
