from payplane_core import platform

from workers.config import WorkerSettings


class RelaySettings(WorkerSettings):
    SERVICE_NAME: str = "relay"
    PORT: int = platform.port("relay")
    # The payments service's database (its own variable: the relay has no database of its own).
    OUTBOX_DATABASE_URL: str = (
        "postgresql+asyncpg://payplane:payplane@127.0.0.1:5432/payplane_payments"
    )
    # One claim or mark statement at a time, plus one spare.
    DB_POOL_SIZE: int = 2
    DB_MAX_OVERFLOW: int = 0
    RELAY_BATCH_SIZE: int = 200
    # How long to sleep when the outbox had nothing ready (a full batch loops at once).
    RELAY_POLL_INTERVAL_SECONDS: float = 0.1
    # A claimed row belongs to its relay this long; a relay that died loses it after that.
    RELAY_LEASE_SECONDS: float = 30.0
    RELAY_PUBLISH_TIMEOUT_SECONDS: float = 10.0
    # Publish attempts before a row is marked failed (terminal, with its last error).
    RELAY_MAX_ATTEMPTS: int = 10
    RELAY_BACKOFF_BASE_SECONDS: float = 1.0
    RELAY_BACKOFF_MAX_SECONDS: float = 300.0
