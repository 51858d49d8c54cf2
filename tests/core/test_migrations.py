"""Migrations under the advisory lock: replicas migrating at once (Kubernetes init containers
during a rollout) leave one schema at head, and a plain ``postgresql://`` URI (CloudNativePG's
``<cluster>-app`` Secret) works as DATABASE_URL."""

import asyncio
import os
import subprocess
import sys

from payplane_core.db import create_engine, drop_database, ensure_database
from sqlalchemy import text

from tests.support.db import PG, REPO

URL = f"{PG}/payplane_unit_migration_lock"
PLAIN_URL = URL.replace("postgresql+asyncpg://", "postgresql://")


def _alembic_upgrade() -> subprocess.Popen:
    """What the chart's init container runs: ``alembic upgrade head`` with only DATABASE_URL."""
    ini = REPO / "services" / "payments" / "alembic.ini"
    return subprocess.Popen(  # noqa: S603 - our own argv
        [sys.executable, "-m", "alembic", "-c", str(ini), "upgrade", "head"],
        cwd=ini.parent,
        env={**os.environ, "DATABASE_URL": PLAIN_URL},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


async def test_concurrent_upgrades_serialize_under_the_lock():
    await drop_database(URL)
    await ensure_database(URL)
    runs = [_alembic_upgrade() for _ in range(3)]
    outputs = await asyncio.gather(*(asyncio.to_thread(run.communicate, None, 60) for run in runs))
    assert [run.returncode for run in runs] == [0, 0, 0], [o[0].decode() for o in outputs]
    engine = create_engine(PLAIN_URL)
    try:
        async with engine.connect() as conn:
            versions = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
            assert len(versions) == 1
            assert await conn.scalar(text("SELECT to_regclass('payments')")) is not None
    finally:
        await engine.dispose()
        await drop_database(URL)
