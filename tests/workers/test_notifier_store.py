"""The notifier's store on its asyncpg connections: the claim, the attempt record and its lease
token, and what becomes of a connection whose statement failed."""

import asyncio
import dataclasses
from datetime import UTC, datetime

import asyncpg
import pytest
from payplane_core import dberrors
from payplane_core.db import create_engine, driver_connection, session_factory
from payplane_core.ids import new_id
from sqlalchemy import text
from workers.notifier import store
from workers.notifier.config import NotifierSettings
from workers.notifier.models import Delivery
from workers.notifier.service import Notifier

from tests.workers.test_notifier import attempts


@pytest.fixture
async def sessions(notifier_url, empty_notifier):
    engine = create_engine(notifier_url, pool_size=1, max_overflow=0)
    yield session_factory(engine)
    await engine.dispose()


def incoming(event_id: str | None = None) -> store.IncomingEvent:
    return store.IncomingEvent(
        event_id=event_id or new_id("evt"),
        merchant_id="mer_store",
        payment_id="pay_store",
        event_type="payment.succeeded",
        body='{"type": "payment.succeeded"}',
        trace={"x-request-id": "req-1", "traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01"},
    )


async def accept(sessions, event: store.IncomingEvent) -> store.Claim | None:
    claims = await store.accept_events(sessions, events=[event], lease_seconds=30)
    return claims.get(event.event_id)


async def record(sessions, claim: store.Claim, result: store.AttemptOutcome) -> Delivery:
    [after] = await store.record_attempts(
        sessions, attempts=[store.Attempt(claim, result, manual=False)], schedule=[60.0]
    )
    return after


def outcome(status: int | None, error: str | None = None) -> store.AttemptOutcome:
    return store.AttemptOutcome("http://127.0.0.1:1/hooks", datetime.now(UTC), 7, status, error)


async def attempt_rows(db, event_id: str) -> list:
    return [
        (r.number, r.trigger, r.status_code, r.succeeded, r.error, r.resulting_state)
        for r in await attempts(db, event_id)
    ]


async def test_accept_claims_a_new_event_once(sessions, empty_notifier):
    event = incoming()
    claim = await accept(sessions, event)
    assert claim is not None
    delivery = claim.delivery
    assert (delivery.event_id, delivery.body, delivery.trace) == (
        event.event_id,
        event.body,
        event.trace,
    )
    assert delivery.state == "pending" and delivery.attempts == 0
    assert claim.lease == delivery.locked_until == delivery.next_attempt_at
    assert claim.lease.tzinfo is not None and claim.lease > datetime.now(UTC)
    assert await accept(sessions, event) is None
    async with empty_notifier.connect() as conn:
        stored = await conn.scalar(text("SELECT trace FROM deliveries"))
    assert stored == event.trace


async def test_failures_then_success_each_leave_an_attempt_row(sessions, empty_notifier):
    claim = await accept(sessions, incoming())
    failed = await record(sessions, claim, outcome(500, "HTTP 500"))
    assert failed.state == "pending" and failed.attempts == 1 and failed.locked_until is None
    assert failed.last_error == "HTTP 500" and failed.next_attempt_at > datetime.now(UTC)
    assert await store.claim_due(sessions, batch=10, lease_seconds=30) == []  # due in a minute
    async with empty_notifier.begin() as conn:
        await conn.execute(text("UPDATE deliveries SET next_attempt_at = now()"))
    [again] = await store.claim_due(sessions, batch=10, lease_seconds=30)
    done = await record(sessions, again, outcome(204))
    assert done.state == "delivered" and done.attempts == 2 and done.delivered_at is not None
    assert await attempt_rows(empty_notifier, done.event_id) == [
        (1, "automatic", 500, False, "HTTP 500", "pending"),
        (2, "automatic", 204, True, None, "delivered"),
    ]


async def test_an_attempt_after_the_lease_was_taken_over_changes_nothing_but_its_own_row(
    sessions, empty_notifier
):
    claim = await accept(sessions, incoming())
    async with empty_notifier.begin() as conn:  # another notifier took it over and delivered
        await conn.execute(
            text(
                "UPDATE deliveries SET state = 'delivered', attempts = 1, locked_until = NULL,"
                " delivered_at = now()"
            )
        )
    late = await record(sessions, claim, outcome(500, "HTTP 500"))
    assert late.state == "delivered" and late.attempts == 1 and late.last_error is None
    assert await attempt_rows(empty_notifier, late.event_id) == [
        (1, "automatic", 500, False, "HTTP 500", "delivered")
    ]


async def test_a_connection_cut_short_is_discarded_and_a_refused_statement_keeps_it(sessions):
    async with driver_connection(sessions.kw["bind"]) as conn:
        first = conn
    with pytest.raises(asyncpg.PostgresError):
        async with driver_connection(sessions.kw["bind"]) as conn:
            await conn.fetchval("SELECT 1 / 0")
    async with driver_connection(sessions.kw["bind"]) as conn:
        assert conn is first  # the server answered: the connection is fine, and pooled again
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2), driver_connection(sessions.kw["bind"]) as conn:
            await conn.fetchval("SELECT pg_sleep(30)")
    async with driver_connection(sessions.kw["bind"]) as conn:
        assert conn is not first  # cancelled mid-statement: replaced, not handed out again
        assert await conn.fetchval("SELECT 1") == 1
    assert first.is_closed()


async def test_a_burst_of_events_is_accepted_in_one_statement(sessions, notifier_url):
    """Messages that arrive together share one statement (one transaction: one ``now()``); a
    message repeated within the burst is a duplicate, like an event already known."""
    notifier = Notifier(NotifierSettings(DATABASE_URL=notifier_url), sessions, None, None)
    first, second = incoming(), incoming()
    claimed, also, repeated = await asyncio.gather(
        notifier._accept(first), notifier._accept(second), notifier._accept(first)
    )
    assert (claimed.delivery.event_id, also.delivery.event_id) == (first.event_id, second.event_id)
    assert repeated is None
    assert claimed.delivery.created_at == also.delivery.created_at
    later = await notifier._accept(incoming())
    assert later.delivery.created_at > claimed.delivery.created_at  # on its own: a new statement
    assert await notifier._accept(second) is None  # known by now


async def test_a_row_the_database_refuses_fails_only_its_own_message(sessions, notifier_url):
    notifier = Notifier(NotifierSettings(DATABASE_URL=notifier_url), sessions, None, None)
    good, bad = incoming(), dataclasses.replace(incoming(), merchant_id="mer_\x00nul")
    accepted, refused = await asyncio.gather(
        notifier._accept(good), notifier._accept(bad), return_exceptions=True
    )
    assert isinstance(accepted, store.Claim) and accepted.delivery.event_id == good.event_id
    assert dberrors.classify(refused) is dberrors.Fault.CLIENT_DATA
    assert notifier.accepting.waiting == [] and notifier.accepting.writing is None


async def test_with_the_database_away_every_message_of_a_burst_fails(notifier_url):
    """Each goes back to RabbitMQ (its handler nacks on the error): none is left waiting."""
    engine = create_engine(
        "postgresql+asyncpg://payplane:payplane@127.0.0.1:1/none", pool_size=2, max_overflow=0
    )
    notifier = Notifier(
        NotifierSettings(DATABASE_URL=notifier_url), session_factory(engine), None, None
    )
    try:
        async with asyncio.timeout(10):
            failures = await asyncio.gather(
                *(notifier._accept(incoming()) for _ in range(3)), return_exceptions=True
            )
    finally:
        await engine.dispose()
    assert [dberrors.classify(f) for f in failures] == [dberrors.Fault.INFRASTRUCTURE] * 3
    assert notifier.accepting.waiting == [] and notifier.accepting.writing is None


async def test_attempts_ending_together_are_recorded_in_one_statement(
    sessions, notifier_url, empty_notifier
):
    """One statement (one ``now()``); an attempt whose lease was taken over meanwhile records
    its row and reads the state the other notifier left, beside one that holds its lease."""
    notifier = Notifier(NotifierSettings(DATABASE_URL=notifier_url), sessions, None, None)
    ours, lost, failing = [await accept(sessions, incoming()) for _ in range(3)]
    async with empty_notifier.begin() as conn:  # another notifier took ``lost`` and delivered it
        await conn.execute(
            text(
                "UPDATE deliveries SET state = 'delivered', attempts = 1, locked_until = NULL,"
                " delivered_at = now() WHERE id = :id"
            ),
            {"id": lost.delivery.id},
        )
    delivered, theirs, retried = await asyncio.gather(
        notifier.recording(store.Attempt(ours, outcome(204), manual=False)),
        notifier.recording(store.Attempt(lost, outcome(500, "HTTP 500"), manual=False)),
        notifier.recording(store.Attempt(failing, outcome(None, "refused"), manual=False)),
    )
    assert (delivered.state, delivered.attempts, delivered.last_status) == ("delivered", 1, 204)
    assert (theirs.state, theirs.attempts, theirs.last_error) == ("delivered", 1, None)
    assert (retried.state, retried.attempts, retried.last_error) == ("pending", 1, "refused")
    assert retried.next_attempt_at > datetime.now(UTC) and retried.locked_until is None
    assert delivered.delivered_at == delivered.updated_at == retried.updated_at  # one statement
    assert await attempt_rows(empty_notifier, lost.delivery.event_id) == [
        (1, "automatic", 500, False, "HTTP 500", "delivered")
    ]
    assert await attempt_rows(empty_notifier, failing.delivery.event_id) == [
        (1, "automatic", None, False, "refused", "pending")
    ]
    redelivery = await store.claim_for_redelivery(
        sessions, delivery_id=delivered.id, lease_seconds=30
    )
    again = await notifier.recording(store.Attempt(redelivery, outcome(204), manual=True))
    assert again.attempts == 2 and again.updated_at > delivered.updated_at  # alone: a new one
    assert (await attempt_rows(empty_notifier, again.event_id))[-1][:2] == (2, "manual")
