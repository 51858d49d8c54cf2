"""The whole provider flow: RabbitMQ → providers → simulator → signed webhook → webhooks →
payments, with failover, circuit breakers and never a double charge."""

import asyncio
import time

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support.pipeline import wait_until

from .conftest import OPEN_SECONDS, THRESHOLD


def steps(story: dict) -> list[tuple[str, str]]:
    return [(e["type"], e["status"]) for e in story["events"]]


async def _idle(sim) -> bool:
    return (await sim.get("/v1/stats")).json()["in_flight"] == 0


async def charge_of(sim, payment_id: str) -> dict | None:
    response = await sim.get(f"/v1/charges/{payment_id}")
    return response.json() if response.status_code == 200 else None


async def test_payment_succeeds(payments, sims):
    payment = await payments.submit(1000)
    story = await payments.wait_status(payment["id"], "succeeded", "failed")
    assert steps(story) == [
        ("payment.created", "pending"),
        ("provider.accepted", "processing"),
        ("provider.webhook", "succeeded"),
    ]
    accepted, webhook = story["events"][1], story["events"][2]
    assert accepted["detail"]["provider"] == "sim-a"
    assert accepted["source"] == "providers"
    assert (webhook["source"], webhook["detail"]["provider"]) == ("webhooks", "sim-a")
    assert (await charge_of(sims["sim-a"], payment["id"]))["status"] == "succeeded"
    assert await charge_of(sims["sim-b"], payment["id"]) is None


async def test_payment_is_declined(payments, sims):
    payment = await payments.submit(2551)
    story = await payments.wait_status(payment["id"], "failed", "succeeded")
    assert story["status"] == "failed"
    assert story["events"][-1]["detail"]["failure_reason"] == "card_declined"


async def test_timeout_fails_over_with_exactly_one_charge(payments, sims):
    await sims["sim-a"].put("/v1/control", json={"latency_ms": 1500})  # provider timeout: 500 ms
    before = {n: (await s.get("/v1/stats")).json()["charges_made"] for n, s in sims.items()}
    payment = await payments.submit(1200)
    story = await payments.wait_status(payment["id"], "succeeded", "failed")
    assert steps(story) == [
        ("payment.created", "pending"),
        ("provider.attempt_failed", "pending"),
        ("provider.accepted", "processing"),
        ("provider.webhook", "succeeded"),
    ]
    failed = story["events"][1]["detail"]
    assert (failed["provider"], failed["result"], failed["charged"]) == (
        "sim-a",
        "ambiguous",
        False,
    )
    assert story["events"][2]["detail"]["provider"] == "sim-b"
    # sim-a's held request has ended (answered, its hold over): it must not have charged.
    await wait_until(lambda: _idle(sims["sim-a"]), within=5, what="sim-a's held request ended")
    assert (await charge_of(sims["sim-a"], payment["id"]))["status"] == "canceled"
    assert (await charge_of(sims["sim-b"], payment["id"]))["charged"] is True
    after = {n: (await s.get("/v1/stats")).json()["charges_made"] for n, s in sims.items()}
    assert after["sim-a"] - before["sim-a"] == 0
    assert after["sim-b"] - before["sim-b"] == 1


async def test_circuit_opens_after_threshold_then_closes_after_ttl(payments, sims, registry):
    sim_a = sims["sim-a"]
    await sim_a.put("/v1/control", json={"error_rate": 1.0})
    for _ in range(THRESHOLD):  # each fails at sim-a (503) and fails over to sim-b
        payment = await payments.submit(1000)
        story = await payments.wait_status(payment["id"], "succeeded", "failed")
        assert story["events"][1]["type"] == "provider.attempt_failed"
        assert story["events"][2]["detail"]["provider"] == "sim-b"
    circuit = (await registry.get("/internal/v1/providers/sim-a")).json()["circuit"]
    assert circuit["open"] is True
    assert 0 < circuit["retry_after_seconds"] <= OPEN_SECONDS

    seen = (await sim_a.get("/v1/stats")).json()["requests_seen"]
    started = time.monotonic()
    payment = await payments.submit(1000)
    story = await payments.wait_status(payment["id"], "processing", "succeeded")
    skipped = story["events"][1]
    assert (skipped["type"], skipped["detail"]["provider"], skipped["detail"]["reason"]) == (
        "provider.skipped",
        "sim-a",
        "circuit_open",
    )
    assert story["events"][2]["detail"]["provider"] == "sim-b"
    assert time.monotonic() - started < 2.0
    assert (await sim_a.get("/v1/stats")).json()["requests_seen"] == seen  # not even asked

    await sim_a.put("/v1/control", json={})
    await asyncio.sleep(OPEN_SECONDS + 0.2)
    assert (await registry.get("/internal/v1/providers/sim-a")).json()["circuit"]["open"] is False
    payment = await payments.submit(1000)
    story = await payments.wait_status(payment["id"], "succeeded")
    assert story["events"][1]["detail"]["provider"] == "sim-a"


async def test_redelivered_event_charges_once(payments, sims):
    payment = await payments.create(1300)
    await asyncio.gather(*(payments.publish(payment) for _ in range(3)))
    story = await payments.wait_status(payment["id"], "succeeded")
    await asyncio.sleep(0.5)  # leave time for the other deliveries to be handled
    story = await payments.tracking(payment["id"])
    assert [t for t, _ in steps(story)].count("provider.accepted") == 1
    charge = await charge_of(sims["sim-a"], payment["id"])
    assert charge["requests"] == 1


async def test_all_providers_failing_fails_the_payment(payments, sims):
    for sim in sims.values():
        await sim.put("/v1/control", json={"error_rate": 1.0})
    payment = await payments.submit(1000)
    story = await payments.wait_status(payment["id"], "failed")
    assert steps(story)[-1] == ("routing.failed", "failed")
    assert story["events"][-1]["detail"]["reason"] == "no_provider_accepted"
    assert [e["detail"]["provider"] for e in story["events"][1:3]] == ["sim-a", "sim-b"]


async def test_unsupported_currency_fails_without_calling_anyone(payments, sims):
    seen = {n: (await s.get("/v1/stats")).json()["requests_seen"] for n, s in sims.items()}
    payment = await payments.submit(1000, currency="JPY")
    story = await payments.wait_status(payment["id"], "failed")
    assert story["events"][-1]["detail"]["reason"] == "no_eligible_provider"
    assert {n: (await s.get("/v1/stats")).json()["requests_seen"] for n, s in sims.items()} == seen


async def test_unfinished_attempt_is_settled_before_failover(payments, sims, providers_db):
    """A worker died after sim-a accepted the charge but before recording it: the redelivered
    payment must stay with sim-a (its cancel answers "already charged"), not go to sim-b."""
    payment = await payments.create(1400)
    accepted = await sims["sim-a"].post(
        "/v1/charges", json={"payment_id": payment["id"], "amount": 1400, "currency": "EUR"}
    )
    assert accepted.status_code == 201
    engine = create_async_engine(providers_db)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO attempts (payment_id, number, provider, state, started_at) "
                "VALUES (:p, 1, 'sim-a', 'sending', now())"
            ),
            {"p": payment["id"]},
        )
    await engine.dispose()
    await sims["sim-a"].put("/v1/control", json={"error_rate": 1.0})  # new charges would fail
    await payments.publish(payment)
    story = await payments.wait_status(payment["id"], "processing", "succeeded")
    assert story["events"][1]["detail"]["provider"] == "sim-a"
    assert await charge_of(sims["sim-b"], payment["id"]) is None


async def test_malformed_message_is_dropped_and_consumption_goes_on(payments, sims):
    payment = await payments.create(1000)
    await payments.publish(payment, body=b"not json at all")
    await payments.publish(payment)
    await payments.wait_status(payment["id"], "succeeded")
