"""The routing flow's hot path: one read per delivery, the provider cache's invalidation, the
accepted attempt reported from what the flow knows (and, after a redelivery, re-read), and
breakers made once per provider."""

import contextlib
from types import SimpleNamespace

import pytest
from providers import records
from providers.flow import breaker_for
from providers.models import Provider
from providers.registry import ProviderCache
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.providers.test_flow import charge_of, steps


@pytest.fixture
async def engine(providers_db):
    engine = create_async_engine(providers_db)
    yield engine
    await engine.dispose()


@contextlib.asynccontextmanager
async def changed(engine, statement: str, undo: str):
    """A registry change made straight in the database, as another replica (or an operator's
    SQL) would: this process's cache is told nothing."""
    async with engine.begin() as conn:
        await conn.execute(text(statement))
    try:
        yield
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(undo))


async def test_the_cache_reads_the_registry_again_only_after_a_change(engine, registry):
    cache = ProviderCache()
    found = await records.find(engine, "pay_no_such_payment")
    assert (found.routing, found.attempts) == (None, [])
    first = await cache.get(engine, found.providers_digest)
    assert {"sim-a", "sim-b"} <= first.keys()
    same = await records.find(engine, "pay_no_such_payment")
    assert await cache.get(engine, same.providers_digest) is first  # not read again

    weight = "UPDATE providers SET weight = weight {} 1 WHERE name = 'sim-b'"
    async with changed(engine, weight.format("+"), weight.format("-")):
        after = await records.find(engine, "pay_no_such_payment")
        assert after.providers_digest != found.providers_digest
        fresh = await cache.get(engine, after.providers_digest)
        assert fresh["sim-b"].weight == first["sim-b"].weight + 1


async def test_a_provider_disabled_elsewhere_takes_no_next_payment(engine, payments, sims):
    warm = await payments.submit(1000)  # the service's cache now holds sim-a, enabled
    story = await payments.wait_status(warm["id"], "succeeded")
    assert story["events"][1]["detail"]["provider"] == "sim-a"
    enabled = "UPDATE providers SET enabled = {} WHERE name = 'sim-a'"
    async with changed(engine, enabled.format("false"), enabled.format("true")):
        payment = await payments.submit(1000)
        story = await payments.wait_status(payment["id"], "succeeded", "failed")
        assert story["events"][1]["detail"]["provider"] == "sim-b"
        assert await charge_of(sims["sim-a"], payment["id"]) is None


async def test_the_accepted_report_names_the_attempt_that_charged(engine, payments, sims):
    await sims["sim-a"].put("/v1/control", json={"error_rate": 1.0})  # fails over to sim-b
    payment = await payments.submit(1000)
    story = await payments.wait_status(payment["id"], "succeeded", "failed")
    assert steps(story)[1:3] == [
        ("provider.attempt_failed", "pending"),
        ("provider.accepted", "processing"),
    ]
    charge = await charge_of(sims["sim-b"], payment["id"])
    reported = story["events"][2]["detail"]
    assert reported == {"provider": "sim-b", "attempt": 2, "charge_id": charge["id"], "attempts": 2}
    # A redelivery reports the same from the records, read in its one statement.
    found = await records.find(engine, payment["id"])
    assert found.routing.provider == "sim-b"
    assert [(a.number, a.state) for a in found.attempts] == [(1, "canceled"), (2, "accepted")]
    accepted = found.accepted()
    assert (accepted.number, accepted.charge_id, accepted.attempts) == (2, charge["id"], 2)


def test_a_breaker_is_made_once_per_provider_and_settings():
    deps = SimpleNamespace(  # no connection is made: a breaker connects on its first use
        breakers={}, redis=Redis(), breaker_prefix="cb:", breaker_window_seconds=10.0
    )
    a = Provider(name="a", failure_threshold=5, open_seconds=30)
    assert breaker_for(deps, a) is breaker_for(deps, Provider(**_settings(a)))
    stricter = Provider(**_settings(a) | {"failure_threshold": 2})
    assert breaker_for(deps, stricter).failure_threshold == 2
    assert breaker_for(deps, stricter) is not breaker_for(deps, a)


def _settings(provider: Provider) -> dict:
    return {k: getattr(provider, k) for k in ("name", "failure_threshold", "open_seconds")}
