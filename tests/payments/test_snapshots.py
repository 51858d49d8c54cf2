"""A status change without a read first (``payments.snapshots``), and why a stale snapshot can
never apply or decide anything: another replica is a second app on the same database."""

from datetime import UTC, datetime

import pytest
from payments.core.config import Settings
from payments.main import create_app
from payments.models import Payment
from payments.schemas import EventIn
from payments.service import record_event
from payments.snapshots import Snapshots
from payplane_core.db import driver_connection

from tests.support.internal import internal as internal_settings
from tests.support.payments import client_for, count


@pytest.fixture
async def replica(db_url, app_clock):
    """Another payments replica: same database, snapshots of its own."""
    other = create_app(
        Settings(DATABASE_URL=db_url, RECONCILE_ENABLED=False, **internal_settings("payments")),
        clock=app_clock.now,
    )
    async with other.router.lifespan_context(other), client_for(other, caller="providers") as c:
        yield c


END = "SELECT 'end of the statements counted'"


async def created(client) -> dict:
    response = await client.post("/api/v1/payments", json={"amount": 900, "currency": "EUR"})
    assert response.status_code == 201, response.text
    return response.json()


async def report(internal, payment_id: str, **body):
    payload = {"type": "provider.update", "source": "providers"} | body
    return await internal.post(f"/internal/v1/payments/{payment_id}/events", json=payload)


async def test_the_change_after_the_create_reads_nothing(app, client):
    payment = await created(client)
    sent: list[str] = []

    def logged(record) -> None:
        sent.append(record.query)

    async with driver_connection(app.state.engine) as conn:
        conn.add_query_logger(logged)
        try:
            moved, applied = await record_event(
                conn,
                payment_id=payment["id"],
                event=EventIn(type="provider.accepted", source="test", status="processing"),
                headers={},
                at=datetime.now(UTC),
                snapshots=app.state.snapshots,
            )
            # Loggers are called soon after their query: by the time this one has made its
            # round trip, the change's has been called.
            await conn.fetchval(END)
        finally:
            conn.remove_query_logger(logged)
    assert applied and moved.status == "processing"
    assert moved.amount == 900 and moved.currency == "EUR"  # the rest, from the snapshot
    statements = [query for query in sent if query != END]
    assert len(statements) == 1 and statements[0].lstrip().startswith("WITH changed AS")


async def test_a_change_made_elsewhere_is_read_again_before_applying(
    client, internal, replica, db, merchant_id
):
    payment = await created(client)  # this replica keeps it as pending
    moved = await report(replica, payment["id"], status="processing", provider="sim-a")
    assert moved.json()["changed"] is True
    # Its snapshot says pending: the repeat is legal there, the write finds the payment moved,
    # and the fresh read makes it the no-op it is.
    repeat = await report(internal, payment["id"], status="processing", provider="sim-a")
    assert repeat.status_code == 200, repeat.text
    assert repeat.json()["changed"] is False
    assert repeat.json()["payment"]["provider"] == "sim-a"
    assert await count(db, "outbox_events", merchant_id) == 2


async def test_what_is_decided_without_a_write_is_decided_on_a_fresh_read(
    client, internal, replica, merchant_id, db
):
    payment = await created(client)
    await report(internal, payment["id"], status="processing", provider="sim-a")  # kept here
    finished = await report(replica, payment["id"], status="succeeded", provider="sim-a")
    assert finished.json()["changed"] is True
    # Here it is still processing: a repeat would be a no-op on the snapshot, but the payment
    # has succeeded, and a step back is refused, as without snapshots.
    late = await report(internal, payment["id"], status="processing", provider="sim-a")
    assert late.status_code == 409, late.text
    assert late.json()["type"].endswith("/illegal-transition")
    assert late.json()["current"] == "succeeded"
    assert await count(db, "outbox_events", merchant_id) == 3


async def test_a_refusal_on_a_stale_snapshot_is_checked_again(client, internal, replica):
    payment = await created(client)  # kept here as pending
    await report(replica, payment["id"], status="processing", provider="sim-a")
    # pending -> succeeded is illegal on the snapshot; the payment is processing by now.
    done = await report(internal, payment["id"], status="succeeded", provider="sim-a")
    assert done.status_code == 200, done.text
    assert done.json()["payment"]["status"] == "succeeded"


def test_kept_until_final_and_at_most_capacity():
    snapshots = Snapshots(capacity=2)
    payments = [_payment(f"pay_{n}", "pending") for n in range(3)]
    for payment in payments:
        snapshots.keep(payment)
    assert len(snapshots) == 2 and snapshots.take("pay_0") is None  # the oldest went
    taken = snapshots.take("pay_1")
    assert taken is not None and taken is not payments[1] and taken.amount == 100
    assert snapshots.take("pay_1") is None  # handed out once
    snapshots.keep(_payment("pay_2", "succeeded"))
    assert snapshots.take("pay_2") is None  # final: nothing follows it
    off = Snapshots(capacity=0)
    off.keep(payments[0])
    assert len(off) == 0 and off.take("pay_0") is None


def _payment(payment_id: str, status: str) -> Payment:
    at = datetime.now(UTC)
    return Payment(
        id=payment_id,
        merchant_id="mer_x",
        amount=100,
        currency="EUR",
        status=status,
        provider=None,
        description=None,
        metadata_={},
        created_at=at,
        updated_at=at,
    )
