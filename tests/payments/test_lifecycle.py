"""State machine, timeline, outbox and transaction boundaries."""

import asyncio
from datetime import UTC, datetime

import pytest
from payments.schemas import EventIn
from payments.service import record_event
from payments.state import TRANSITIONS, IllegalTransition, Status, check_transition
from payplane_core.db import driver_connection
from sqlalchemy import text

from tests.support.payments import count

LEGAL = {(a, b) for a, nxt in TRANSITIONS.items() for b in nxt}


@pytest.mark.parametrize("current", list(Status))
@pytest.mark.parametrize("target", list(Status))
def test_state_machine(current, target):
    expected_legal = (current, target) in {
        ("pending", "processing"),
        ("pending", "failed"),
        ("pending", "canceled"),
        ("processing", "succeeded"),
        ("processing", "failed"),
    }
    assert ((current, target) in LEGAL) == expected_legal
    if expected_legal:
        check_transition(current, target)
    else:
        with pytest.raises(IllegalTransition):
            check_transition(current, target)


async def new_payment(client) -> dict:
    response = await client.post("/api/v1/payments", json={"amount": 700, "currency": "GBP"})
    assert response.status_code == 201
    return response.json()


async def event(internal, payment_id, **body):
    payload = {"type": "provider.update", "source": "providers"} | body
    return await internal.post(f"/internal/v1/payments/{payment_id}/events", json=payload)


async def test_full_lifecycle_records_timeline_and_outbox(client, internal, db, merchant_id):
    payment = await new_payment(client)
    accepted = await event(
        internal, payment["id"], type="provider.accepted", status="processing", provider="sim-a"
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["changed"] is True
    assert accepted.json()["payment"]["provider"] == "sim-a"
    done = await event(internal, payment["id"], type="provider.succeeded", status="succeeded")
    assert done.json()["payment"]["status"] == "succeeded"

    tracking = (await client.get(f"/api/v1/payments/{payment['id']}/tracking")).json()
    assert [(e["type"], e["status"]) for e in tracking["events"]] == [
        ("payment.created", "pending"),
        ("provider.accepted", "processing"),
        ("provider.succeeded", "succeeded"),
    ]
    stamps = [e["at"] for e in tracking["events"]]
    assert stamps == sorted(stamps)
    async with db.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT routing_key, payload->'data'->>'status', state FROM outbox_events"
                    " WHERE payment_id = :p ORDER BY created_at"
                ),
                {"p": payment["id"]},
            )
        ).all()
    assert rows == [
        ("payment.pending", "pending", "pending"),
        ("payment.processing", "processing", "pending"),
        ("payment.succeeded", "succeeded", "pending"),
    ]


async def test_repeated_status_changes_nothing(client, internal, db, merchant_id):
    payment = await new_payment(client)
    await event(internal, payment["id"], status="processing")
    again = await event(internal, payment["id"], status="processing")
    assert again.status_code == 200 and again.json()["changed"] is False
    assert await count(db, "outbox_events", merchant_id) == 2


@pytest.mark.parametrize(
    ("path", "target"),
    [([], "succeeded"), (["processing", "succeeded"], "failed"), (["canceled"], "processing")],
)
async def test_illegal_transitions_are_409_and_change_nothing(
    client, internal, db, merchant_id, path, target
):
    payment = await new_payment(client)
    for status in path:
        assert (await event(internal, payment["id"], status=status)).status_code == 200
    before = await count(db, "outbox_events", merchant_id)
    refused = await event(internal, payment["id"], status=target)
    assert refused.status_code == 409
    assert refused.json()["type"].endswith("/illegal-transition")
    assert await count(db, "outbox_events", merchant_id) == before


async def test_racing_outcomes_apply_exactly_one(client, internal, db, merchant_id):
    """Outcomes racing for one payment: each is checked against the status it finally lands on
    (compare-and-set), so exactly one final status, timeline row and event, the rest 409."""
    payment = await new_payment(client)
    await event(internal, payment["id"], status="processing", provider="sim-a")
    racing = await asyncio.gather(
        *(
            event(internal, payment["id"], type=f"provider.{target}", status=target)
            for target in ["succeeded", "failed"] * 5
        )
    )
    applied = [r.json()["payment"]["status"] for r in racing if r.json().get("changed")]
    assert len(applied) == 1, [r.status_code for r in racing]
    assert all(r.status_code in (200, 409) for r in racing)
    tracking = (await client.get(f"/api/v1/payments/{payment['id']}/tracking")).json()
    assert tracking["status"] == applied[0]
    assert [e["status"] for e in tracking["events"]] == ["pending", "processing", applied[0]]
    assert await count(db, "outbox_events", merchant_id) == 3


async def test_merchants_cannot_report_events(client):
    payment = await new_payment(client)
    response = await client.post(
        f"/internal/v1/payments/{payment['id']}/events",
        json={"type": "x", "source": "me", "status": "processing"},
    )
    assert response.status_code == 403


async def test_failed_transaction_leaves_no_state_change_and_no_outbox_row(
    client, app, db, merchant_id
):
    payment = await new_payment(client)
    with pytest.raises(RuntimeError):
        async with driver_connection(app.state.engine) as conn, conn.transaction():
            changed = await record_event(
                conn,
                payment_id=payment["id"],
                event=EventIn(type="provider.accepted", source="test", status=Status.PROCESSING),
                headers={},
                at=datetime.now(UTC),
            )
            assert changed[1]  # the rows reached the database inside the transaction
            raise RuntimeError("crash after writing, before commit")
    shown = (await client.get(f"/api/v1/payments/{payment['id']}/show")).json()
    assert shown["status"] == "pending"
    assert await count(db, "outbox_events", merchant_id) == 1  # only the creation event


async def test_database_failure_mid_create_writes_nothing(client, db, merchant_id):
    """The outbox insert fails inside PostgreSQL: no payment, no key left behind, a 500 problem."""
    async with db.begin() as conn:
        # Fails only this test's merchant, so tests running beside it are unaffected.
        await conn.execute(
            text(
                "CREATE OR REPLACE FUNCTION fail_outbox() RETURNS trigger AS $$ BEGIN"
                f" IF NEW.merchant_id = '{merchant_id}' THEN"
                " RAISE EXCEPTION 'outbox unavailable'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
            )
        )
        await conn.execute(text("DROP TRIGGER IF EXISTS fail_outbox ON outbox_events"))
        await conn.execute(
            text(
                "CREATE TRIGGER fail_outbox BEFORE INSERT ON outbox_events"
                " FOR EACH ROW EXECUTE FUNCTION fail_outbox()"
            )
        )
    try:
        response = await client.post(
            "/api/v1/payments",
            json={"amount": 100, "currency": "EUR"},
            headers={"Idempotency-Key": "doomed"},
        )
        assert response.status_code == 500
        assert response.headers["content-type"] == "application/problem+json"
        assert "outbox unavailable" not in response.text and "Traceback" not in response.text
        for table in ("payments", "outbox_events", "idempotency_keys"):
            assert await count(db, table, merchant_id) == 0
    finally:
        async with db.begin() as conn:
            await conn.execute(text("DROP TRIGGER IF EXISTS fail_outbox ON outbox_events"))
