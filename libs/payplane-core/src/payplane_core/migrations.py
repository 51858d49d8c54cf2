"""The body of every service's Alembic ``env.py`` (async engine, URL from settings).

Migrations hold a PostgreSQL advisory lock while they run, so several replicas (Kubernetes init
containers) or a rolling upgrade can all run ``alembic upgrade head`` at once: one migrates, the
others wait, then find the database at head and do nothing.
"""

import asyncio
import os

from alembic import context
from sqlalchemy import MetaData, pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from payplane_core.db import async_url

# Session-level advisory lock key shared by every service's migrations (each has its own database).
MIGRATION_LOCK_KEY = 0x7061_7970  # "payp"


def _do_run(connection: Connection, metadata: MetaData) -> None:
    context.configure(connection=connection, target_metadata=metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(url: str, metadata: MetaData) -> None:
    engine = create_async_engine(async_url(url), poolclass=pool.NullPool)
    async with engine.connect() as connection:
        await connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        await connection.commit()  # the session lock outlives this; Alembic runs its own tx
        try:
            await connection.run_sync(_do_run, metadata)
        finally:
            await connection.execute(
                text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
            await connection.commit()
    await engine.dispose()


def run_env(metadata: MetaData) -> None:
    """URL: given by ``payplane_core.db.migrate``, else ``DATABASE_URL`` from the environment."""
    config = context.config
    url = config.attributes.get("database_url") or os.environ["DATABASE_URL"]
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    asyncio.run(_run_async(url, metadata))
