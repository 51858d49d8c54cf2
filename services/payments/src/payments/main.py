"""payments service entry point: ``uvicorn --factory payments.main:create_app``."""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI
from payplane_core.app import create_service_app
from payplane_core.breaker import report_failures_into_breaker
from payplane_core.clock import Clock, utc_now
from payplane_core.db import create_engine, ping, session_factory
from payplane_core.retention import Retention, every, purge_all
from payplane_core.tasks import stop
from redis.asyncio import Redis

from payments import reconcile
from payments.api.routes import internal, payments
from payments.core.config import Settings
from payments.idempotency import EXPIRED_KEYS
from payments.quota import QuotaLedger, QuotaSettlement
from payments.snapshots import Snapshots

log = logging.getLogger(__name__)


def retention_rules(settings: Settings) -> list[Retention]:
    published = Retention(
        "outbox_events",
        "published_at",
        keep=timedelta(hours=settings.OUTBOX_RETENTION_HOURS),
        condition="state = 'published'",
    )
    return [EXPIRED_KEYS, published]


async def _rebuild_quota_counters(ledger: QuotaLedger, engine) -> None:
    try:
        rebuilt = await ledger.rebuild(engine)
    except Exception as exc:  # noqa: BLE001 - startup goes on; the next create heals a counter
        log.warning("quota counters not rebuilt", extra={"error": type(exc).__name__})
    else:
        log.info("quota counters rebuilt from PostgreSQL", extra={"merchants": rebuilt})


@asynccontextmanager
async def reconciliation(settings: Settings, engine, sessions, clock: Clock) -> AsyncIterator[None]:
    """The reconciler runs beside the API in every replica (they share the work)."""
    if not settings.RECONCILE_ENABLED:
        yield
        return
    providers = settings.internal_http(
        "providers", settings.PROVIDERS_URL, timeout=settings.RECONCILE_CALL_TIMEOUT_SECONDS
    )
    reconciler = reconcile.Reconciler(
        engine,
        sessions,
        providers,
        reconcile.Policy.from_settings(settings),
        concurrency=settings.RECONCILE_CONCURRENCY,
        clock=clock,
    )
    task = asyncio.create_task(
        reconcile.run_forever(reconciler, interval=settings.RECONCILE_INTERVAL_SECONDS)
    )
    try:
        yield
    finally:
        await stop(task)
        await providers.aclose()


def create_app(settings: Settings | None = None, *, clock: Clock = utc_now) -> FastAPI:
    """``clock`` stamps payments, events and Idempotency-Key expiry (tests pass their own)."""
    settings = settings or Settings()
    ledger = (
        QuotaLedger(Redis.from_url(settings.REDIS_URL, socket_timeout=0.25))
        if settings.REDIS_URL
        else None
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.DATABASE_URL, **settings.db_pool())
        app.state.engine = engine
        app.state.sessions = session_factory(engine)
        if ledger is not None:
            await _rebuild_quota_counters(ledger, engine)
        purger = None
        if settings.RETENTION_INTERVAL_SECONDS > 0:
            rules = retention_rules(settings)
            purger = asyncio.create_task(
                every(settings.RETENTION_INTERVAL_SECONDS, lambda: purge_all(engine, rules))
            )
        async with reconciliation(settings, engine, app.state.sessions, clock):
            yield
        if purger is not None:
            purger.cancel()
        await engine.dispose()
        if ledger is not None:
            await ledger.redis.aclose()

    async def database(app: FastAPI) -> None:
        await ping(app.state.engine)

    app = create_service_app(
        settings=settings,
        routers=[payments.router, internal.router],
        lifespan=lifespan,
        readiness=[("database", database)],
    )
    app.state.quota = ledger
    app.state.clock = clock
    app.state.snapshots = Snapshots(settings.PAYMENT_SNAPSHOTS)
    if ledger is not None:
        app.add_middleware(QuotaSettlement, ledger=ledger)
    if settings.REDIS_URL:
        # Failures are observed here, where they happen (database down, bugs), not guessed at
        # the gateway, which only reads the breaker and answers 503 while it is open.
        report_failures_into_breaker(
            app,
            redis_url=settings.REDIS_URL,
            name=settings.PAYMENTS_BREAKER,
            path="/api/v1/payments",
            failure_threshold=settings.BREAKER_FAILURE_THRESHOLD,
            window_seconds=settings.BREAKER_WINDOW_SECONDS,
            open_seconds=settings.BREAKER_OPEN_SECONDS,
            min_open_seconds=min(settings.BREAKER_MIN_OPEN_SECONDS, settings.BREAKER_OPEN_SECONDS),
        )
    return app
