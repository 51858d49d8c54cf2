from payplane_core import platform
from payplane_core.settings import CsvList, EgressSettings
from pydantic import Field, model_validator

from workers.config import SecondsList, WorkerSettings

# Standard Webhooks practice (as Svix does it): after the first try, wait 5 s, 5 min, 30 min,
# 2 h, 5 h, 10 h, 10 h -- eight attempts spread over about 27.6 hours, then give up.
DEFAULT_RETRY_SCHEDULE = [5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0]


class NotifierSettings(EgressSettings, WorkerSettings):
    SERVICE_NAME: str = "notifier"
    PORT: int = platform.port("notifier")
    # Deliveries are inspected and redelivered by the CLI and the operator.
    INTERNAL_ALLOWED_CALLERS: CsvList = Field(default_factory=lambda: ["cli", "operator"])
    DATABASE_URL: str = "postgresql+asyncpg://payplane:payplane@127.0.0.1:5432/payplane_notifier"
    DB_POOL_SIZE: int = 4
    DB_MAX_OVERFLOW: int = 2
    MERCHANTS_URL: str = platform.local_url("merchants")
    # Messages in flight per notifier (RabbitMQ prefetch): bounds concurrent first deliveries.
    NOTIFIER_PREFETCH: int = 16
    # The whole attempt (DNS, connect, send, answer) must end within this; shorter than the
    # lease, so a slow attempt is never taken over and sent a second time in parallel.
    WEBHOOK_TIMEOUT_SECONDS: float = 10.0
    # Only this much of a merchant's answer is read (its status is what counts).
    WEBHOOK_MAX_RESPONSE_BYTES: int = 4096
    # Attempts in flight at once to one merchant; a delivery waits up to WEBHOOK_DEFER_SECONDS
    # in memory for one of its merchant's slots, then in the database (due again after as
    # long), so a slow merchant cannot hold up the others. Deliveries held at once (waiting or
    # being sent): WEBHOOK_MAX_IN_FLIGHT, beyond which they wait in the database at once.
    WEBHOOK_MAX_CONCURRENCY_PER_MERCHANT: int = 4
    WEBHOOK_MAX_IN_FLIGHT: int = 200
    WEBHOOK_DEFER_SECONDS: float = 2.0
    # Waits between automatic attempts; when they are used up the delivery is marked failed.
    WEBHOOK_RETRY_SCHEDULE_SECONDS: SecondsList = DEFAULT_RETRY_SCHEDULE
    # A claimed delivery belongs to its notifier this long (must exceed the webhook timeout).
    DELIVERY_LEASE_SECONDS: float = 30.0
    RETRY_POLL_INTERVAL_SECONDS: float = 1.0
    RETRY_BATCH_SIZE: int = 50
    # A merchant's webhook URL and secret are cached while its version in Redis is unchanged
    # (the merchants service bumps it after every change), and for at most this long. Without
    # REDIS_URL (or with Redis unreachable) every delivery asks the merchants service.
    MERCHANT_CACHE_SECONDS: float = 30.0
    REDIS_URL: str | None = None

    @classmethod
    def secret_fields(cls) -> list[str]:
        return [*super().secret_fields(), "INTERNAL_SIGNING_KEY"]

    @model_validator(mode="after")
    def _attempt_ends_within_its_lease(self) -> "NotifierSettings":
        if self.WEBHOOK_DEFER_SECONDS + self.WEBHOOK_TIMEOUT_SECONDS >= self.DELIVERY_LEASE_SECONDS:
            raise ValueError(
                "WEBHOOK_DEFER_SECONDS + WEBHOOK_TIMEOUT_SECONDS (the wait for a slot, then the"
                " attempt) must be shorter than DELIVERY_LEASE_SECONDS"
            )
        return self
