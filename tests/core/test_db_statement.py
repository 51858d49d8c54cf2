"""``payplane_core.db.Statement``: named parameters, compiled once to asyncpg's positional form."""

import pytest
from payplane_core.db import Statement, create_engine, driver_connection

URL = "postgresql+asyncpg://payplane:payplane@127.0.0.1:5432/postgres"


@pytest.fixture
async def conn():
    engine = create_engine(URL, pool_size=1)
    try:
        async with driver_connection(engine) as connection:
            yield connection
    finally:
        await engine.dispose()


def test_a_name_used_twice_is_one_parameter():
    statement = Statement("SELECT :a, :b, :a")
    assert statement.sql == "SELECT $1, $2, $1"
    assert statement.names == ("a", "b")
    assert statement.args({"b": 2, "a": 1, "unused": 3}) == [1, 2]


def test_colons_that_are_not_parameters_stay():
    statement = Statement("SELECT 'a:b', CAST(:v AS text) || 'x'")
    assert statement.sql == "SELECT 'a:b', CAST($1 AS text) || 'x'"


def test_a_missing_value_is_an_error_before_sending():
    with pytest.raises(KeyError):
        Statement("SELECT :a").args({})


async def test_values_reach_postgresql_in_their_places(conn):
    row = await Statement(
        "SELECT CAST(:word AS text) AS word, CAST(:n AS int) * 2 AS twice, "
        "CAST(:doc AS jsonb) AS doc, CAST(:word AS text) = 'hi' AS same"
    ).fetchrow(conn, {"n": 21, "word": "hi", "doc": '{"k": [1, 2]}'})
    assert dict(row) == {"word": "hi", "twice": 42, "doc": {"k": [1, 2]}, "same": True}
    assert await Statement("SELECT CAST(:x AS int) + 1").fetchval(conn, {"x": 1}) == 2
    assert await Statement("SELECT generate_series(1, :n)").fetch(conn, {"n": 3}) == [
        (1,),
        (2,),
        (3,),
    ]
