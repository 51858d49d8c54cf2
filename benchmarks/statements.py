"""What one hot-path statement costs its caller: SQLAlchemy's execution layer against the same
SQL as a ``payplane_core.db.Statement`` on the pooled connection's asyncpg connection.

The statements are the payments service's own: the create (payment, timeline, outbox event and
usage in one statement), the read before a status change, and the change itself (update,
timeline and outbox event, compare-and-set). Both ways take a connection from the same pool
(SQLAlchemy's through ``autocommit``, the driver's through ``driver_connection``), send the
same text and get the same rows. Only this process's CPU is counted (``getrusage``, client
side: PostgreSQL's own work is the same both ways); the rounds alternate, and the median round
is printed. ``PAYPLANE_BENCH_STATEMENTS`` sets the statements per round (1,000 unless told).
"""

import json
import os
import resource
import statistics
from datetime import UTC, datetime
from pathlib import Path

import uvloop
from payments import service
from payplane_core.db import (
    autocommit,
    create_engine,
    driver_connection,
    drop_database,
    prepare_database,
)
from payplane_core.ids import new_id
from sqlalchemy import text

REPO = Path(__file__).resolve().parents[1]
URL = "postgresql+asyncpg://payplane:payplane@127.0.0.1:5432/payplane_bench_statements"
COUNT = int(os.environ.get("PAYPLANE_BENCH_STATEMENTS", "1000"))
ROUNDS = 5


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _create_params() -> dict:
    at = datetime.now(UTC)
    return {
        "id": new_id("pay"),
        "merchant_id": "mer_bench",
        "amount": 1999,
        "currency": "EUR",
        "status": "pending",
        "description": "bench",
        "metadata": json.dumps({"order": "1"}),
        "at": at,
        "source": "api",
        "event_id": new_id("evt"),
        "event_type": "payment.pending",
        "payload": json.dumps({"type": "payment.pending", "data": {"id": "pay_x"}}),
        "headers": "{}",
        "period": "2026-12",
    }


def _change_params(payment_id: str, was: str, now: str) -> dict:
    return {
        "id": payment_id,
        "status": now,
        "provider": "sim",
        "was_status": was,
        "was_provider": "sim",
        "at": datetime.now(UTC),
        "type": "provider.step",
        "source": "bench",
        "detail": "{}",
        "event_id": new_id("evt"),
        "merchant_id": "mer_bench",
        "event_type": f"payment.{now}",
        "payload": "{}",
        "headers": "{}",
    }


async def _rounds(engine, payment_id: str) -> dict[str, list[float]]:
    statements = {
        "create": (service._CREATES[0], _create_params),
        "read": (service._READ, lambda: {"id": payment_id}),
        # Flips the payment between two statuses: every execution writes.
        "change": (service._CHANGES[1], None),
    }
    flip = ["processing", "succeeded"]

    def change_params() -> dict:
        flip.reverse()
        return _change_params(payment_id, flip[1], flip[0])

    texts = {statement: text(statement.source) for statement, _ in statements.values()}

    async def via_sqlalchemy(statement, params) -> None:
        async with autocommit(engine) as conn:  # text() built once, as the services did
            (await conn.execute(texts[statement], params())).first()

    async def via_driver(statement, params) -> None:
        async with driver_connection(engine) as conn:
            await statement.fetchrow(conn, params())

    figures: dict[str, list[float]] = {}
    for _ in range(ROUNDS):
        for name, (statement, params) in statements.items():
            params = params or change_params
            for way, run in (("sqlalchemy", via_sqlalchemy), ("driver", via_driver)):
                for _ in range(COUNT // 10):  # warm: prepared statements, pool
                    await run(statement, params)
                start = _cpu_seconds()
                for _ in range(COUNT):
                    await run(statement, params)
                used = (_cpu_seconds() - start) / COUNT * 1e6
                figures.setdefault(f"{name} {way}", []).append(used)
    return figures


async def _bench() -> None:
    await drop_database(URL)
    await prepare_database(REPO / "services" / "payments" / "alembic.ini", URL)
    engine = create_engine(URL, pool_size=2)
    try:
        first = _create_params() | {"status": "processing"}
        async with driver_connection(engine) as conn:
            await service._CREATES[0].fetchval(conn, first)
            await conn.execute("UPDATE payments SET provider = 'sim' WHERE id = $1", first["id"])
        figures = await _rounds(engine, first["id"])
    finally:
        await engine.dispose()
        await drop_database(URL)
    print(
        f"payments' statements, {COUNT} per round, {ROUNDS} rounds alternating, median round; "
        "client CPU only, connection checkout included"
    )
    for name in ("create", "read", "change"):
        layer = statistics.median(figures[f"{name} sqlalchemy"])
        driver = statistics.median(figures[f"{name} driver"])
        print(
            f"  {name:6s}: SQLAlchemy text() {layer:4.0f} µs, Statement on the driver "
            f"{driver:4.0f} µs ({layer - driver:+.0f} µs through the layer)"
        )


def run_bench() -> None:
    uvloop.run(_bench())


if __name__ == "__main__":
    run_bench()
