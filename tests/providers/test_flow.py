"""The whole provider flow: RabbitMQ → providers → simulator → signed webhook → webhooks →
payments, with failover, circuit breakers and never a double charge."""

import asyncio
import json
import time
from datetime import UTC, datetime

import httpx
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from standardwebhooks import Webhook

from tests.support.internal import GatewayAuth
from tests.support.pipeline import wait_until

from .conftest import OPEN_SECONDS, SIM_SECRETS, THRESHOLD


def consumed(outcome: str) -> float:
    """The in-process consumer's count of payment.pending messages with this outcome."""
    value = REGISTRY.get_sample_value(
        "payplane_provider_events_consumed_total", {"outcome": outcome}
    )
    return value or 0.0


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

    async def closed() -> bool:
        circuit = (await registry.get("/internal/v1/providers/sim-a")).json()["circuit"]
        return circuit["open"] is False

    await wait_until(closed, within=OPEN_SECONDS + 2, what="sim-a's circuit closed by its TTL")
    payment = await payments.submit(1000)
    story = await payments.wait_status(payment["id"], "succeeded")
    assert story["events"][1]["detail"]["provider"] == "sim-a"


async def test_redelivered_event_charges_once(payments, sims):
    routed_before = consumed("routed")
    payment = await payments.create(1300)
    await asyncio.gather(*(payments.publish(payment) for _ in range(3)))
    story = await payments.wait_status(payment["id"], "succeeded")

    async def all_three_acked() -> bool:
        return consumed("routed") >= routed_before + 3

    await wait_until(all_three_acked, within=10, what="the three deliveries routed and acked")
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


async def test_malformed_message_is_dead_lettered_and_consumption_goes_on(payments, sims):
    payment = await payments.create(1000)
    await payments.publish(payment, body=b"not json at all", message_id="evt_malformed")
    event = {"type": "payment.pending", "timestamp": payment["created_at"], "data": payment}
    wrong = json.dumps(event | {"data": payment | {"amount": "1000"}}).encode()
    await payments.publish(payment, body=wrong, message_id="evt_amount_as_text")
    await payments.publish(payment)
    await payments.wait_status(payment["id"], "succeeded")
    await payments.broker.dead_lettered("evt_malformed", within=5)
    await payments.broker.dead_lettered("evt_amount_as_text", within=5)


async def test_poison_message_is_dead_lettered_after_the_delivery_limit(payments, sims):
    """A well-formed payment.pending that makes routing fail every time (payments does not
    know the payment: 404 on every report) is redelivered up to the quorum queue's delivery
    limit, then lands in the dead letters, instead of looping forever; a good payment
    published after it is routed meanwhile."""
    good = await payments.create(1000)
    poison = good | {"id": "pay_poison_" + good["id"][4:], "currency": "JPY"}
    await payments.publish(poison, message_id="evt_poison")
    await payments.publish(good)
    await payments.wait_status(good["id"], "succeeded")
    headers = await payments.broker.dead_lettered("evt_poison", within=30)
    [death] = headers["x-death"]
    assert death["reason"] == "delivery_limit"


async def charges_made(sims) -> dict[str, int]:
    return {n: (await s.get("/v1/stats")).json()["charges_made"] for n, s in sims.items()}


async def test_5xx_after_the_charge_never_leads_to_a_second_charge(payments, sims):
    """sim-a charges, then answers 500: ambiguous, so the flow cancels at sim-a, learns it was
    charged (409) and keeps the payment there. Taking the 500 as "not charged" would charge
    again at sim-b."""
    await sims["sim-a"].put("/v1/control", json={"error_after_charge_rate": 1.0})
    before = await charges_made(sims)
    payment = await payments.submit(1500)
    story = await payments.wait_status(payment["id"], "succeeded", "failed")
    assert steps(story) == [
        ("payment.created", "pending"),
        ("provider.accepted", "processing"),
        ("provider.webhook", "succeeded"),
    ]
    assert story["events"][1]["detail"]["provider"] == "sim-a"
    assert await charge_of(sims["sim-b"], payment["id"]) is None
    after = await charges_made(sims)
    assert (after["sim-a"] - before["sim-a"], after["sim-b"] - before["sim-b"]) == (1, 0)


async def test_5xx_before_the_charge_fails_over_only_after_a_confirmed_cancel(payments, sims):
    await sims["sim-a"].put("/v1/control", json={"error_rate": 1.0})
    payment = await payments.submit(1600)
    story = await payments.wait_status(payment["id"], "succeeded", "failed")
    failed = story["events"][1]
    assert failed["type"] == "provider.attempt_failed"
    assert (failed["detail"]["http_status"], failed["detail"]["canceled"]) == (503, True)
    assert story["events"][2]["detail"]["provider"] == "sim-b"
    # The cancel left a tombstone at sim-a: a late retry of that request can never charge.
    assert (await charge_of(sims["sim-a"], payment["id"]))["status"] == "canceled"
    await sims["sim-a"].put("/v1/control", json={})
    late = await sims["sim-a"].post(
        "/v1/charges", json={"payment_id": payment["id"], "amount": 1600, "currency": "EUR"}
    )
    assert late.status_code == 409
    assert (await charge_of(sims["sim-a"], payment["id"]))["charged"] is False


def _callback(payment: dict, provider: str, msg_id: str, **data) -> tuple[bytes, dict]:
    body = {
        "type": "charge.failed",
        "timestamp": payment["created_at"],
        "data": {
            "id": f"ch_forged_{provider}",
            "payment_id": payment["id"],
            "status": "failed",
            "amount": payment["amount"],
            "currency": payment["currency"],
            "failure_reason": "card_declined",
        }
        | data,
    }
    raw = json.dumps(body)
    now = datetime.now(UTC)
    headers = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(SIM_SECRETS[provider]).sign(msg_id, now, raw),
        "webhook-provider": provider,
    }
    return raw.encode(), headers


async def test_callbacks_from_another_provider_or_for_another_charge_are_refused(
    platform, payments, sims
):
    """The payment is held by sim-a. A correctly signed outcome from sim-b, or one from sim-a
    naming another amount or currency, is refused with a problem, audited, and not applied."""
    payment = await payments.submit(1700)
    story = await payments.wait_status(payment["id"], "succeeded", "failed")
    assert story["status"] == "succeeded"
    pid = payment["id"]
    cases = [
        ("wrong-provider", _callback(payment, "sim-b", f"m0_{pid}")),
        ("charge-mismatch", _callback(payment, "sim-a", f"m1_{pid}", amount=1)),
        ("charge-mismatch", _callback(payment, "sim-a", f"m2_{pid}", currency="USD")),
    ]
    async with httpx.AsyncClient(base_url=platform.ingress_url) as ingress:
        for reason, (raw, headers) in cases:
            answer = await ingress.post("/api/v1/payments/webhook", content=raw, headers=headers)
            assert answer.status_code == 409, (reason, answer.text)
            problem = answer.json()
            assert answer.headers["content-type"] == "application/problem+json"
            assert (problem["type"], problem["reason"]) == (
                f"https://payplane.dev/problems/webhook-{reason}",
                reason,
            )
            assert "log_id" in problem
    assert await payments.tracking(payment["id"]) == story  # nothing applied
    async with httpx.AsyncClient(
        base_url=platform.webhooks_url,
        auth=GatewayAuth(audience="webhooks", caller="cli", scopes=[]),
    ) as operator:
        rows = (
            await operator.get(
                "/internal/v1/webhook-logs",
                params={"payment_id": payment["id"], "verdict": "rejected"},
            )
        ).json()["data"]
    assert sorted((r["provider"], r["reason"]) for r in rows) == [
        ("sim-a", "charge-mismatch"),
        ("sim-a", "charge-mismatch"),
        ("sim-b", "wrong-provider"),
    ]
