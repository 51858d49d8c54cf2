"""The async pipeline: relay drain rate, and payment commit -> verified webhook latency.

Real PostgreSQL and RabbitMQ; the relay and the notifier as real processes with their default
settings (relay batch 200, woken by NOTIFY; notifier prefetch 32); the real merchants service and a
receiver that verifies every webhook with the official ``standardwebhooks`` library.
Databases ``payplane_bench_pipeline_*`` and queue names of its own; everything is removed after.
"""

import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from payplane_core.db import drop_database, prepare_database
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from benchmarks.cpu import process_cpu_ms

# The receiver, worker-process and merchant helpers are the test suite's (tests/support),
# importable as ``tests.support`` since ``make bench`` runs from the repository root.
from tests.support.internal import internal, internal_env
from tests.support.payments import client_for
from tests.support.pipeline import (
    WorkerProcess,
    create_merchant,
    delete_topology,
    running_receiver,
    serve,
    topology_env,
    wait_until,
)

REPO = Path(__file__).resolve().parents[1]
PG = "postgresql+asyncpg://payplane:payplane@127.0.0.1:5432"
BACKLOG = 10_000
RATE = 50  # payments per second for the latency run
SECONDS = 10
MERCHANTS_REDIS = "redis://127.0.0.1:6379/13"


async def _databases() -> dict[str, str]:
    urls = {
        name: f"{PG}/payplane_bench_pipeline_{name}" for name in ("outbox", "notifier", "merchants")
    }
    for name, service in (
        ("outbox", "payments"),
        ("notifier", "workers"),
        ("merchants", "merchants"),
    ):
        await drop_database(urls[name])
        await prepare_database(REPO / "services" / service / "alembic.ini", urls[name])
    return urls


async def _insert_backlog(engine, merchant_id: str, count: int) -> None:
    """``count`` outbox rows in one transaction, as the payments service writes them."""
    async with engine.begin() as conn:
        await conn.execute(
            text(
                """
                INSERT INTO outbox_events (id, payment_id, merchant_id, event_type, routing_key,
                    payload, headers, state, attempts, next_retry_at, created_at)
                SELECT 'evt_bench' || lpad(i::text, 21, '0'), 'pay_bench' || i, :m,
                    'payment.pending', 'payment.pending',
                    jsonb_build_object('type', 'payment.pending', 'timestamp', now(),
                        'data', jsonb_build_object('id', 'pay_bench' || i, 'amount', 1000 + i,
                                                   'currency', 'EUR', 'status', 'pending')),
                    '{}'::jsonb, 'pending', 0, now(), now()
                FROM generate_series(1, :n) AS i
                """
            ),
            {"m": merchant_id, "n": count},
        )


async def _published(engine) -> int:
    async with engine.connect() as conn:
        return await conn.scalar(
            text("SELECT count(*) FROM outbox_events WHERE state = 'published'")
        )


async def _drain_rate(engine, env: dict[str, str], logs: Path) -> float:
    relay = WorkerProcess("workers.relay.main:create_app", env, logs / "relay.log").start()
    try:
        await relay.wait_ready()
        await _insert_backlog(engine, "mer_bench", BACKLOG)
        started = time.perf_counter()
        await wait_until(
            lambda: _published_all(engine), within=300, interval=0.02, what="backlog drained"
        )
        return BACKLOG / (time.perf_counter() - started)
    finally:
        relay.stop()


async def _published_all(engine) -> bool:
    return await _published(engine) >= BACKLOG


async def _latency(urls, env, logs, receiver, merchants_url) -> tuple[list[float], dict]:
    """Commit -> verified webhook of each payment, and the relay's and the notifier's CPU ms
    over the run (from the first create to the last delivery)."""
    from payments.core.config import Settings
    from payments.main import create_app

    async with engine_scope(urls["outbox"]) as engine:
        async with engine.begin() as conn:
            await conn.execute(text("TRUNCATE outbox_events, payment_events, payments CASCADE"))
    merchant_id, _ = await create_merchant(receiver, merchants_url)
    app = create_app(
        Settings(DATABASE_URL=urls["outbox"], LOG_LEVEL="WARNING", **internal("payments"))
    )
    committed: dict[str, float] = {}
    workers = [
        WorkerProcess(f"workers.{n}.main:create_app", env, logs / f"{n}.log").start()
        for n in ("relay", "notifier")
    ]
    try:
        for worker in workers:
            await worker.wait_ready()
        before = [process_cpu_ms(w.process.pid) for w in workers]
        async with (
            app.router.lifespan_context(app),
            client_for(app, merchant_id=merchant_id) as client,
        ):

            async def create(index: int) -> None:
                response = await client.post(
                    "/api/v1/payments", json={"amount": 500 + index, "currency": "EUR"}
                )
                committed[response.json()["id"]] = time.time()  # the response follows the commit

            tasks = []
            for index in range(RATE * SECONDS):
                tasks.append(asyncio.create_task(create(index)))
                await asyncio.sleep(1 / RATE)
            await asyncio.gather(*tasks)
            await wait_until(
                lambda: len(receiver.delivered_ids()) >= RATE * SECONDS,
                within=60,
                what="deliveries",
            )
        used = {
            name: process_cpu_ms(w.process.pid) - start
            for name, w, start in zip(("relay", "notifier"), workers, before, strict=True)
        }
    finally:
        for worker in workers:
            worker.stop()
    arrived = {}
    for hit in receiver.log:
        if hit.verified and hit.status < 300:
            payment_id = json.loads(hit.body)["data"]["id"]
            arrived.setdefault(payment_id, hit.at)
    return sorted(arrived[p] - committed[p] for p in committed), used


class engine_scope:
    def __init__(self, url: str) -> None:
        self.engine = create_async_engine(url)

    async def __aenter__(self):
        return self.engine

    async def __aexit__(self, *exc) -> None:
        await self.engine.dispose()


async def _bench() -> None:
    from merchants.core.config import Settings as MerchantsSettings
    from merchants.main import create_app as create_merchants_app

    urls = await _databases()
    names = topology_env("bench")
    logs = Path(tempfile.mkdtemp(prefix="pipeline-bench-"))
    merchants_app = create_merchants_app(
        MerchantsSettings(
            DATABASE_URL=urls["merchants"],
            **internal("merchants"),
            ENCRYPTION_KEYS=["bench-encryption-key"],
            WEBHOOK_URL_ALLOWLIST=["127.0.0.1/32"],
            REDIS_URL=MERCHANTS_REDIS,
            LOG_LEVEL="WARNING",
        )
    )
    try:
        async with serve(merchants_app) as merchants_url, running_receiver() as receiver:
            env = {
                **names,
                **internal_env("notifier"),
                "WEBHOOK_URL_ALLOWLIST": "127.0.0.1/32",
                "OUTBOX_DATABASE_URL": urls["outbox"],
                "DATABASE_URL": urls["notifier"],
                "MERCHANTS_URL": merchants_url,
                # The merchants app's Redis: the notifier caches the webhook target by the
                # merchant's version there, as on the platform (without it, one merchants
                # request per webhook).
                "REDIS_URL": MERCHANTS_REDIS,
            }
            async with engine_scope(urls["outbox"]) as engine:
                rate = await _drain_rate(engine, env, logs)
            print(
                f"relay drain: {BACKLOG} events in one backlog -> {rate:,.0f} events/s "
                "(1 relay, batch 200, publisher confirms, persistent)"
            )
            await delete_topology(names)  # drop the 10,000 undelivered bench messages
            latencies, used = await _latency(urls, env, logs, receiver, merchants_url)
            p50 = statistics.quantiles(latencies, n=100)[49] * 1000
            p99 = statistics.quantiles(latencies, n=100)[98] * 1000
            print(
                f"commit -> verified webhook at {RATE} payments/s for {SECONDS}s "
                f"({len(latencies)} events): p50 {p50:.0f} ms, p99 {p99:.0f} ms, "
                f"max {latencies[-1] * 1000:.0f} ms"
            )
            events = len(latencies)
            print(
                f"CPU per event over that run: notifier {used['notifier'] / events:.2f} ms, "
                f"relay {used['relay'] / events:.2f} ms (one webhook per event)"
            )
    finally:
        await delete_topology(names)
        for url in urls.values():
            await drop_database(url)


def run_bench() -> None:
    asyncio.run(_bench())


run = run_bench

if __name__ == "__main__":
    run_bench()
