"""The provider simulator: idempotent charges, deterministic outcomes, signed callbacks."""

import asyncio
import json

import pytest
from payplane_core.ids import new_id
from simulator.rules import Outcome, outcome_for
from standardwebhooks import Webhook

from tests.support.pipeline import wait_until

from .conftest import SECRET


def charge_body(amount: int = 1000, **extra) -> dict:
    return {"payment_id": new_id("pay"), "amount": amount, "currency": "EUR"} | extra


def verified(received) -> dict:
    return Webhook(SECRET).verify(received.body, received.headers)


@pytest.mark.parametrize(
    ("amount", "metadata", "expected"),
    [
        (1000, {}, Outcome.SUCCEED),
        (1051, {}, Outcome.DECLINE),
        (99961, {}, Outcome.FAIL_AFTER_DELAY),
        (71, {}, Outcome.TIMEOUT),
        (1051, {"sim_outcome": "succeed"}, Outcome.SUCCEED),
        (1000, {"sim_outcome": "timeout"}, Outcome.TIMEOUT),
        (1000, {"sim_outcome": "nonsense"}, Outcome.SUCCEED),
    ],
)
def test_rules_are_deterministic(amount, metadata, expected):
    assert outcome_for(amount=amount, metadata=metadata) is expected


async def test_success_sends_a_verifiable_callback(sim, receiver):
    body = charge_body()
    response = await sim.post("/v1/charges", json=body)
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "processing"
    assert response.json()["charged"] is True
    [delivery] = await receiver.wait_for(1)
    event = verified(delivery)
    assert event["type"] == "charge.succeeded"
    assert event["data"]["payment_id"] == body["payment_id"]
    assert event["data"]["provider"] == "sim-t"
    assert delivery.headers["webhook-provider"] == "sim-t"
    assert (await sim.get(f"/v1/charges/{body['payment_id']}")).json()["status"] == "succeeded"


async def test_decline_and_fail_after_delay(sim, receiver):
    declined, slow = charge_body(1051), charge_body(261)
    assert (await sim.post("/v1/charges", json=declined)).status_code == 201
    assert (await sim.post("/v1/charges", json=slow)).status_code == 201
    first = verified((await receiver.wait_for(1))[0])
    assert (first["type"], first["data"]["failure_reason"]) == ("charge.failed", "card_declined")
    second = verified((await receiver.wait_for(2))[1])
    assert second["data"]["payment_id"] == slow["payment_id"]
    assert second["data"]["failure_reason"] == "processing_error"


async def test_concurrent_repeats_charge_once(sim):
    body = charge_body()
    responses = await asyncio.gather(*(sim.post("/v1/charges", json=body) for _ in range(10)))
    assert sorted(r.status_code for r in responses) == [200] * 9 + [201]
    assert {r.json()["id"] for r in responses} == {responses[0].json()["id"]}
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in responses) == 9
    charge = (await sim.get(f"/v1/charges/{body['payment_id']}")).json()
    assert charge["requests"] == 10
    assert (await sim.get("/v1/stats")).json()["charges_made"] == 1


async def test_same_id_other_amount_is_refused(sim):
    body = charge_body()
    await sim.post("/v1/charges", json=body)
    response = await sim.post("/v1/charges", json=body | {"amount": 5})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_timeout_rule_holds_then_504_without_charge(sim):
    body = charge_body(171)
    response = await sim.post("/v1/charges", json=body)
    assert response.status_code == 504
    charge = (await sim.get(f"/v1/charges/{body['payment_id']}")).json()
    assert (charge["status"], charge["charged"]) == ("abandoned", False)
    assert (await sim.post("/v1/charges", json=body)).status_code == 409


async def test_cancel_during_injected_latency_prevents_the_charge(sim):
    assert (await sim.put("/v1/control", json={"latency_ms": 300})).status_code == 200
    body = charge_body()
    pending = asyncio.create_task(sim.post("/v1/charges", json=body))
    await wait_until(_in_flight(sim), within=5, what="the charge request held")
    canceled = await sim.post(f"/v1/charges/{body['payment_id']}/cancel")
    assert canceled.status_code == 200
    # The held charge itself was canceled (a cancel arriving first would leave a tombstone with
    # a placeholder amount and no request).
    assert canceled.json()["status"] == "canceled"
    assert (canceled.json()["amount"], canceled.json()["requests"]) == (body["amount"], 1)
    response = await pending
    assert response.status_code == 409
    stats = (await sim.get("/v1/stats")).json()
    assert (stats["charges_made"], stats["in_flight"]) == (0, 0)


async def test_cancel_after_acceptance_is_refused(sim):
    body = charge_body()
    await sim.post("/v1/charges", json=body)
    response = await sim.post(f"/v1/charges/{body['payment_id']}/cancel")
    assert response.status_code == 409
    assert response.json()["charge"]["charged"] is True


async def test_cancel_of_unknown_id_leaves_a_tombstone(sim):
    body = charge_body()
    assert (await sim.post(f"/v1/charges/{body['payment_id']}/cancel")).status_code == 200
    assert (await sim.post("/v1/charges", json=body)).status_code == 409
    assert (await sim.get("/v1/stats")).json()["charges_made"] == 0


async def test_error_injection_records_nothing(sim):
    await sim.put("/v1/control", json={"error_rate": 1.0})
    body = charge_body()
    response = await sim.post("/v1/charges", json=body)
    assert response.status_code == 503
    assert (await sim.get(f"/v1/charges/{body['payment_id']}")).status_code == 404
    assert (await sim.put("/v1/control", json={"error_rate": 2})).status_code == 422


async def test_callback_is_retried_until_2xx_with_same_id(sim, receiver):
    receiver.statuses = [500, 503]
    body = charge_body()
    await sim.post("/v1/charges", json=body)
    deliveries = await receiver.wait_for(3)
    ids = {d.headers["webhook-id"] for d in deliveries}
    assert len(ids) == 1
    for delivery in deliveries:
        verified(delivery)

    # The simulator logs an attempt once it has the answer: the receiver may see it first.
    async def logged() -> list[int] | None:
        log = await sim.get("/v1/webhook-deliveries", params={"payment_id": body["payment_id"]})
        statuses = [d["status"] for d in log.json()["data"]]
        return statuses if len(statuses) == 3 else None

    assert await wait_until(logged, within=10, what="three logged attempts") == [500, 503, 200]


async def test_resend_is_a_duplicate(sim, receiver):
    body = charge_body()
    await sim.post("/v1/charges", json=body)
    await receiver.wait_for(1)
    assert (await sim.post(f"/v1/charges/{body['payment_id']}/resend-webhook")).status_code == 202
    first, second = await receiver.wait_for(2)
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert json.loads(first.body)["data"] == json.loads(second.body)["data"]


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", "Basic x", "Bearer "])
async def test_api_key_required(sim, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    sim.headers.pop("Authorization", None)
    response = await sim.post("/v1/charges", json=charge_body(), headers=headers)
    assert response.status_code == 401
    assert response.json()["status"] == 401


async def test_bad_input_is_a_problem(sim):
    response = await sim.post("/v1/charges", json={"payment_id": "x", "amount": -1})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    response = await sim.post(
        "/v1/charges", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400


def _in_flight(sim):
    async def held() -> bool:
        return (await sim.get("/v1/stats")).json()["in_flight"] == 1

    return held
