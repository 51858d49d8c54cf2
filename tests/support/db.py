"""A fresh, migrated database per test session."""

from pathlib import Path

from payplane_core.db import drop_database, prepare_database

REPO = Path(__file__).resolve().parents[2]
PG = "postgresql+asyncpg://payplane:payplane@127.0.0.1:5432"


async def fresh_database(service: str, database: str) -> str:
    url = f"{PG}/payplane_unit_{database}"
    await drop_database(url)
    await prepare_database(REPO / "services" / service / "alembic.ini", url)
    return url
