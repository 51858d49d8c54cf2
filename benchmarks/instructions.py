"""Instructions per payment life in the payments service, counted by callgrind: a figure that does
not move with the machine's load, for cuts too small for the CPU-time benches to show.

The life is the payments service's three requests (the signed create with an Idempotency-Key,
the provider's ``processing`` report, the outcome), sent in-process through httpx's ASGI
transport, so the count includes that client and its signing; the baseline in the same run is
three ``GET /health`` through the same client and middleware (the floor any request pays).
Each figure is the difference of two runs of the same program (``N_SMALL`` and ``N_LARGE``
lives after the same warm-up), so start-up, imports and warm-up cancel out. callgrind counts
user-space instructions only: the kernel's share of each round trip (the CPU-time benches see
it) and PostgreSQL's work are not in it.

Needs valgrind (skipped with a message when it is absent). About a minute per run here
(valgrind runs Python some 50x slower); ``PAYPLANE_BENCH_INSTRUCTIONS=small,large`` sets the
two counts (40,120 unless told).
"""

import asyncio
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
URL = "postgresql+asyncpg://payplane:payplane@127.0.0.1:5432/payplane_bench_instructions"
N_SMALL, N_LARGE = (
    int(n) for n in os.environ.get("PAYPLANE_BENCH_INSTRUCTIONS", "40,120").split(",")
)
WARM_UP = 20


async def _scenario(kind: str, count: int) -> None:
    from payments.core.config import Settings
    from payments.main import create_app

    from tests.support.internal import internal
    from tests.support.payments import client_for

    app = create_app(
        Settings(
            DATABASE_URL=URL, RECONCILE_ENABLED=False, LOG_LEVEL="WARNING", **internal("payments")
        )
    )
    async with (
        app.router.lifespan_context(app),
        client_for(app, merchant_id="mer_instructions") as merchant,
        client_for(app, caller="providers") as providers,
        client_for(app, caller="webhooks") as webhooks,
    ):

        async def life(index: int) -> None:
            created = await merchant.post(
                "/api/v1/payments",
                json={"amount": 1000 + index, "currency": "EUR"},
                headers={"idempotency-key": f"{kind}-{count}-{index}-{time.time_ns()}"},
            )
            path = f"/internal/v1/payments/{created.json()['id']}/events"
            step = {"source": "bench", "provider": "sim-a"}
            moved = await providers.post(
                path, json=step | {"type": "provider.accepted", "status": "processing"}
            )
            done = await webhooks.post(
                path,
                json=step
                | {"type": "provider.webhook", "status": "succeeded", "amount": 1000 + index}
                | {"currency": "EUR"},
            )
            statuses = (created.status_code, moved.status_code, done.status_code)
            assert statuses == (201, 200, 200), statuses

        async def health(_: int) -> None:
            for _ in range(3):
                assert (await merchant.get("/health")).status_code == 200

        once = life if kind == "life" else health
        for index in range(WARM_UP + count):
            await once(index)


def _count(kind: str, count: int) -> int:
    """Instructions of one whole run of the scenario under callgrind."""
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONHASHSEED="0")
    done = subprocess.run(  # noqa: S603 - our own argv
        [
            shutil.which("valgrind") or "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            "-m",
            "benchmarks.instructions",
            kind,
            str(count),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return int(re.search(r"Collected : (\d+)", done.stderr).group(1))


def _per_one(kind: str) -> float:
    return (_count(kind, N_LARGE) - _count(kind, N_SMALL)) / (N_LARGE - N_SMALL)


def run_bench() -> None:
    if shutil.which("valgrind") is None:
        print("  skipped: valgrind is not installed")
        return
    from payplane_core.db import drop_database, prepare_database

    asyncio.run(prepare_database(REPO / "services" / "payments" / "alembic.ini", URL))
    try:
        life, floor = _per_one("life"), _per_one("health")
    finally:
        asyncio.run(drop_database(URL))
    print(
        f"  payments' three requests of a payment's life, in-process (client and signing "
        f"included), {N_LARGE} - {N_SMALL} lives under callgrind, user-space instructions"
    )
    print(
        f"  per life {life / 1e6:6.2f} M instructions; three GET /health {floor / 1e6:5.2f} M "
        f"(the floor); the work above it {(life - floor) / 1e6:6.2f} M"
    )


if __name__ == "__main__":
    if len(sys.argv) == 3:
        import uvloop

        uvloop.run(_scenario(sys.argv[1], int(sys.argv[2])))
    else:
        run_bench()
