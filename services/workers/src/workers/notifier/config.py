from workers.config import SecondsList, WorkerSettings

# Standard Webhooks practice (as Svix does it): after the first try, wait 5 s, 5 min, 30 min,
# 2 h, 5 h, 10 h, 10 h -- eight attempts spread over about 27.6 hours, then give up.
DEFAULT_RETRY_SCHEDULE = [5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0]


class NotifierSettings(WorkerSettings):
    SERVICE_NAME: str = "notifier"
    PORT: int = 8112
    DATABASE_URL: str = "postgresql+asyncpg://payplane:payplane@127.0.0.1:5432/payplane_notifier"
    DB_POOL_SIZE: int = 10
    MERCHANTS_URL: str = "http://127.0.0.1:8102"
    # Messages in flight per notifier (RabbitMQ prefetch): bounds concurrent first deliveries.
    NOTIFIER_PREFETCH: int = 32
    WEBHOOK_TIMEOUT_SECONDS: float = 10.0
    # Waits between automatic attempts; when they are used up the delivery is marked failed.
    WEBHOOK_RETRY_SCHEDULE_SECONDS: SecondsList = DEFAULT_RETRY_SCHEDULE
    # A claimed delivery belongs to its notifier this long (must exceed the webhook timeout).
    DELIVERY_LEASE_SECONDS: float = 30.0
    RETRY_POLL_INTERVAL_SECONDS: float = 1.0
    RETRY_BATCH_SIZE: int = 50
    # Merchant webhook URL and secret are cached this long (a rotated secret applies after it).
    MERCHANT_CACHE_SECONDS: float = 30.0
