"""``payplane_core.db.autocommit``: each statement commits as it runs, and the pooled connection
it used serves the next caller with ordinary transactions (a rollback really rolls back)."""

import asyncpg
import pytest
from payplane_core.db import autocommit, create_engine, drop_database, ensure_database
from sqlalchemy import text

URL = "postgresql+asyncpg://payplane:payplane@127.0.0.1:5432/payplane_unit_autocommit"
DSN = "postgresql://payplane:payplane@127.0.0.1:5432/payplane_unit_autocommit"


@pytest.fixture
async def engine():
    await drop_database(URL)
    await ensure_database(URL)
    admin = await asyncpg.connect(DSN)
    await admin.execute("CREATE TABLE notes (note text)")
    await admin.close()
    # One connection: every use below is provably the same pooled connection.
    engine = create_engine(URL, pool_size=1, max_overflow=0)
    try:
        yield engine
    finally:
        await engine.dispose()
        await drop_database(URL)


async def _notes() -> set[str]:
    """What another session sees: only committed rows."""
    other = await asyncpg.connect(DSN)
    try:
        return {row["note"] for row in await other.fetch("SELECT note FROM notes")}
    finally:
        await other.close()


def _insert(note: str):
    return text("INSERT INTO notes (note) VALUES (:note)").bindparams(note=note)


PID = text("SELECT pg_backend_pid()")


async def test_statements_commit_as_they_run_and_the_connection_returns_transactional(engine):
    with pytest.raises(RuntimeError):
        async with autocommit(engine) as conn:
            pid = await conn.scalar(PID)
            await conn.execute(_insert("autocommitted"))
            # Committed by the statement itself, not by the end of the block.
            assert await _notes() == {"autocommitted"}
            raise RuntimeError("the block fails after its statement")
    assert await _notes() == {"autocommitted"}  # a failure afterwards undoes nothing

    async with engine.connect() as conn:
        assert await conn.scalar(PID) == pid  # the same pooled connection
        await conn.execute(_insert("rolled back"))
        assert await _notes() == {"autocommitted"}  # inside a transaction: not visible yet
        await conn.rollback()
    assert await _notes() == {"autocommitted"}

    async with engine.begin() as conn:
        assert await conn.scalar(PID) == pid
        await conn.execute(_insert("committed"))
    assert await _notes() == {"autocommitted", "committed"}


async def test_a_transaction_after_an_autocommit_error_still_rolls_back(engine):
    async with autocommit(engine) as conn:
        pid = await conn.scalar(PID)
        await conn.execute(_insert("first"))
        with pytest.raises(Exception, match="payplane_unit_missing"):
            await conn.execute(text("SELECT * FROM payplane_unit_missing"))
        # No transaction was aborted by the error: the next statement runs and commits.
        await conn.execute(_insert("after the error"))
    assert await _notes() == {"first", "after the error"}

    async with engine.connect() as conn:
        assert await conn.scalar(PID) == pid
        await conn.execute(_insert("rolled back"))
        await conn.rollback()
    assert await _notes() == {"first", "after the error"}
