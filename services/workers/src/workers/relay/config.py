from payplane_core import platform
from pydantic import Field, model_validator

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
    # Where the relay LISTENs for the outbox's notifications ("": OUTBOX_DATABASE_URL). It
    # needs a session of its own: not through PgBouncer in transaction mode, which cannot carry
    # LISTEN (the chart points it at the primary's service).
    RELAY_LISTEN_DATABASE_URL: str = ""
    RELAY_BATCH_SIZE: int = 200
    # The relay claims when the payments database NOTIFYs an outbox insert (and goes on while
    # batches come back full). It also claims this often without one: rows of a relay that
    # died (lease expiry), inserts while its listener was reconnecting, rows made ready later.
    RELAY_FALLBACK_POLL_SECONDS: float = Field(default=5.0, gt=0)
    # Claims woken by notifications start at least this far apart: after a quiet spell a
    # notification is claimed at once, under load the commits of this window share one claim.
    # Shorter costs CPU in every process downstream, not only the relay: the batches it
    # publishes are what RabbitMQ, providers, the notifier, webhooks... handle in bursts
    # (docs/performance.md, fourth round: 0 and 0.05 s measured, +10 ms per payment at 25/s).
    # Each event on a payment's way waits up to this long, twice on the way to its last
    # webhook (created, then the outcome): 0.1 s put that webhook's p99 near 260-320 ms at
    # 25-40/s, 0.05 s near 175 ms, for 0-15 % more CPU per payment there (ninth round; the
    # fuller the batches, the less it costs).
    RELAY_NOTIFY_MIN_INTERVAL_SECONDS: float = Field(default=0.05, ge=0)
    # A confirmed batch is marked published by the next claim's statement, or on its own after
    # this long without one (its rows stay leased to this relay meanwhile): under load one
    # statement per batch instead of two (tenth round, docs/performance.md). Well under the lease.
    RELAY_MARK_DELAY_SECONDS: float = Field(default=0.2, ge=0)
    # The listener's connection is checked (SELECT 1) this often while no notification comes,
    # and reconnected with backoff doubling up to RELAY_LISTEN_RECONNECT_MAX_SECONDS.
    RELAY_LISTEN_CHECK_SECONDS: float = Field(default=5.0, gt=0)
    RELAY_LISTEN_RECONNECT_MAX_SECONDS: float = Field(default=5.0, gt=0)
    # A claimed row belongs to its relay this long; a relay that died loses it after that.
    RELAY_LEASE_SECONDS: float = 30.0
    RELAY_PUBLISH_TIMEOUT_SECONDS: float = 10.0
    # Publish attempts before a row is marked failed (terminal, with its last error).
    RELAY_MAX_ATTEMPTS: int = 10
    RELAY_BACKOFF_BASE_SECONDS: float = 1.0
    RELAY_BACKOFF_MAX_SECONDS: float = 300.0

    @property
    def db_max_connections(self) -> int:
        """The pool, plus the listener's own connection."""
        return self.DB_POOL_SIZE + self.DB_MAX_OVERFLOW + 1

    @property
    def listen_database_url(self) -> str:
        return self.RELAY_LISTEN_DATABASE_URL or self.OUTBOX_DATABASE_URL

    @model_validator(mode="after")
    def _marks_within_the_lease(self) -> "RelaySettings":
        # Unmarked rows are safe only while leased: past the lease another relay republishes.
        if self.RELAY_MARK_DELAY_SECONDS >= self.RELAY_LEASE_SECONDS / 2:
            raise ValueError("RELAY_MARK_DELAY_SECONDS must be under half of RELAY_LEASE_SECONDS")
        return self
