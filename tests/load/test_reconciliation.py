"""The safety net: payments finish even when callbacks and events get lost.

- The simulators' callbacks are switched off (their control API): every payment still reaches
  its final state through status sync (the provider's charge-status API), within the deadline,
  and its timeline says so.
- Its provider goes away for good: the payment fails cleanly, with the reason.
- The ``payment.pending`` event never reaches the providers consumer (its queue unbound): the
  reconciler routes the payment again.
"""

import asyncio
import contextlib
import time

import aio_pika
import asyncpg
import httpx
import pytest
from payplane_cli.providers import SIMULATORS, simulator_credentials
from payplane_cli.stack import PROCESSES
from payplane_core import messaging

from tests.load.conftest import (
    GIVE_UP_AFTER_SECONDS,
    RECONCILE_AFTER_SECONDS,
    REROUTE_AFTER_SECONDS,
)
from tests.support.platform import Client, new_merchant

pytestmark = pytest.mark.e2e
FINAL = ("succeeded", "failed")
# The deadline, then one reconciler pass, then the merchant's webhook through the pipeline.
WITHIN = RECONCILE_AFTER_SECONDS + 20


@pytest.fixture(scope="module")
def shop(stack, receiver) -> Client:
    merchant = new_merchant(stack, webhook_url=receiver.url)
    receiver.secret = merchant.webhook_secret
    return Client(stack.url("envoy"), merchant, source_address="127.0.0.40")


@contextlib.contextmanager
def callbacks_off(stack):
    sims = [
        httpx.Client(
            base_url=stack.url(name),
            headers={"Authorization": f"Bearer {simulator_credentials(stack, name)['api_key']}"},
        )
        for name in SIMULATORS
    ]
    try:
        for sim in sims:
            assert sim.put("/v1/control", json={"callbacks_enabled": False}).status_code == 200
        yield
    finally:
        for sim in sims:
            with contextlib.suppress(httpx.HTTPError):  # a stopped one restarts with defaults
                sim.put("/v1/control", json={})
            sim.close()


def pay(shop: Client, amount: int) -> str:
    response = shop.post("/api/v1/payments", {"amount": amount, "currency": "EUR"})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def timeline(shop: Client, payment_id: str) -> list[dict]:
    return shop.get(f"/api/v1/payments/{payment_id}/tracking").json()["events"]


def test_lost_callbacks_are_recovered_by_status_sync(stack, shop, receiver):
    with callbacks_off(stack):
        started = time.monotonic()
        payment_ids = [pay(shop, 1051 if n % 4 == 0 else 1000) for n in range(12)]
        missing = receiver.wait_final(payment_ids, timeout=WITHIN)
        took = time.monotonic() - started
    assert not missing, f"{len(missing)} payments never finished"
    assert took >= RECONCILE_AFTER_SECONDS  # finished by the reconciler, not a callback
    for n, payment_id in enumerate(payment_ids):
        events = timeline(shop, payment_id)
        kinds = [e["type"] for e in events]
        assert "provider.webhook" not in kinds
        synced = next(e for e in events if e["type"] == "reconciliation.synced")
        assert synced["source"] == "reconciler"
        assert synced["status"] == ("failed" if n % 4 == 0 else "succeeded")
        assert synced["detail"]["provider"] in SIMULATORS
        assert events[-1]["status"] in FINAL


async def _unbound_consumer_queue(stack):
    connection = await aio_pika.connect_robust(stack.amqp_url)
    channel = await connection.channel()
    queue = await channel.get_queue(messaging.PROVIDERS_QUEUE.name, ensure=True)
    return connection, queue


async def published(stack, payment_id: str) -> None:
    conn = await asyncpg.connect(stack.database_url("payments").replace("+asyncpg", ""))
    try:
        async with asyncio.timeout(10):
            while not await conn.fetchval(  # noqa: ASYNC110 - polling another process
                "SELECT state = 'published' FROM outbox_events"
                " WHERE payment_id = $1 AND event_type = 'payment.pending'",
                payment_id,
            ):
                await asyncio.sleep(0.05)
    finally:
        await conn.close()


def test_a_payment_nobody_routed_is_routed_again(stack, shop, receiver):
    async def unbind():
        connection, queue = await _unbound_consumer_queue(stack)
        await queue.unbind("payments", "payment.pending")
        await connection.close()

    async def rebind():
        connection, queue = await _unbound_consumer_queue(stack)
        await queue.bind("payments", "payment.pending")
        await connection.close()

    asyncio.run(unbind())
    try:
        payment_id = pay(shop, 1000)
        asyncio.run(published(stack, payment_id))  # and so lost: nobody was bound
    finally:
        asyncio.run(rebind())
    assert not receiver.wait_final([payment_id], timeout=REROUTE_AFTER_SECONDS + 20)
    kinds = [(e["type"], e["status"], e["source"]) for e in timeline(shop, payment_id)]
    assert kinds[:3] == [
        ("payment.created", "pending", kinds[0][2]),
        ("reconciliation.reroute", "pending", "reconciler"),
        ("provider.accepted", "processing", "providers"),
    ]
    assert kinds[-1][1] == "succeeded"


def test_a_provider_gone_for_good_fails_the_payment_with_a_reason(stack, shop, receiver):
    with callbacks_off(stack):
        payment_id = pay(shop, 1000)
        provider = shop_provider(shop, payment_id)
        stack.stop(provider)  # accepted, then unreachable: nobody can tell the outcome
    try:
        missing = receiver.wait_final([payment_id], timeout=WITHIN + GIVE_UP_AFTER_SECONDS)
    finally:
        stack.start(PROCESSES[provider])
        stack.wait_healthy(PROCESSES[provider])
    assert not missing
    events = timeline(shop, payment_id)
    unresolved = next(e for e in events if e["type"] == "reconciliation.unresolved")
    assert unresolved["detail"]["reason"] == "provider_unreachable"
    failed = events[-1]
    assert (failed["type"], failed["status"], failed["source"]) == (
        "reconciliation.failed",
        "failed",
        "reconciler",
    )
    assert failed["detail"]["reason"] == "provider_unreachable"
    assert failed["detail"]["provider"] == provider


def shop_provider(shop: Client, payment_id: str) -> str:
    """The provider that accepted the payment (once it is processing)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        payment = shop.get(f"/api/v1/payments/{payment_id}/show").json()
        if payment["status"] == "processing":
            return payment["provider"]
        time.sleep(0.05)
    raise TimeoutError(f"{payment_id} never reached processing")
