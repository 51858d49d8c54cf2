"""The reconciler's deadlines and claims, with the clock in the test's hand (real PostgreSQL);
the whole loop against real providers is in tests/load/test_reconciliation.py."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from payments import reconcile
from payments.reconcile import Claimed, Policy, after_sync, claim
from payplane_core.ids import new_id
from sqlalchemy import text

T0 = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)  # after anything the other tests wrote
POLICY = Policy(
    pending_after=timedelta(seconds=30),
    processing_after=timedelta(seconds=60),
    give_up_after=timedelta(minutes=10),
    lease=timedelta(seconds=120),
    backoff_base=timedelta(seconds=5),
    backoff_max=timedelta(seconds=300),
    batch_size=100_000,  # every due payment of the shared test database
)


async def insert(db, status: str, *, at: datetime) -> str:
    payment_id = new_id("pay")
    async with db.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO payments (id, merchant_id, amount, currency, status, provider,"
                " metadata, created_at, updated_at) VALUES (:id, 'mer_r', 100, 'EUR', :status,"
                " 'sim-a', '{}', :at, :at)"
            ),
            {"id": payment_id, "status": status, "at": at},
        )
    return payment_id


async def claimed_ids(db, now: datetime, policy: Policy = POLICY) -> set[str]:
    return {c.payment_id for c in await claim(db, now=now, policy=policy)}


async def test_deadlines_per_status(db):
    pending = await insert(db, "pending", at=T0)
    processing = await insert(db, "processing", at=T0)
    done = await insert(db, "succeeded", at=T0 - timedelta(days=1))
    assert not {pending, processing} & await claimed_ids(db, T0 + timedelta(seconds=29))
    got = await claimed_ids(db, T0 + timedelta(seconds=31))
    assert pending in got and processing not in got
    got = await claimed_ids(db, T0 + timedelta(seconds=61))
    assert processing in got and pending not in got  # still leased
    assert done not in got


async def test_a_claim_is_a_lease_and_replicas_never_share(db):
    ids = {await insert(db, "processing", at=T0 + timedelta(hours=1)) for _ in range(40)}
    now = T0 + timedelta(hours=1, minutes=2)
    # Two replicas at once: every payment claimed exactly once.
    first, second = await asyncio.gather(claimed_ids(db, now), claimed_ids(db, now))
    assert not first & second
    assert ids <= first | second
    # Leased: nobody takes them again until the lease runs out.
    assert not ids & await claimed_ids(db, now + timedelta(seconds=119))
    assert ids <= await claimed_ids(db, now + timedelta(seconds=121))


def answer(reachable=True, status=None, **extra):
    charge = None if status is None else {"id": "ch_1", "status": status} | extra
    return {"provider": "sim-a", "reachable": reachable, "error": None, "charge": charge}


@pytest.mark.parametrize("status", ["succeeded", "failed"])
def test_final_status_at_the_provider_finishes_the_payment(status):
    claimed = Claimed("pay_1", 0, None)
    step = after_sync(answer(status=status, failure_reason="x"), claimed, now=T0, policy=POLICY)
    assert (step.result, step.event.status, step.event.type) == (
        status,
        status,
        "reconciliation.synced",
    )
    assert step.event.detail["charge_id"] == "ch_1"
    assert step.event.source == "reconciler"


def test_a_synced_outcome_carries_what_the_provider_charged():
    """So payments compares it with the payment (a mismatch is refused, never applied)."""
    claimed = Claimed("pay_1", 0, None)
    charged = answer(status="succeeded", amount=1250, currency="EUR")
    step = after_sync(charged, claimed, now=T0, policy=POLICY)
    assert (step.event.amount, step.event.currency) == (1250, "EUR")
    unstated = after_sync(answer(status="succeeded"), claimed, now=T0, policy=POLICY)
    assert (unstated.event.amount, unstated.event.currency) == (None, None)


def test_still_processing_changes_nothing():
    step = after_sync(answer(status="processing"), Claimed("p", 0, None), now=T0, policy=POLICY)
    assert (step.result, step.event.status) == ("still_processing", None)


def test_unreachable_provider_fails_the_payment_after_the_give_up_time():
    first = after_sync(answer(reachable=False), Claimed("p", 0, None), now=T0, policy=POLICY)
    assert (first.result, first.unreachable_since) == ("provider_unreachable", T0)
    assert first.event.type == "reconciliation.unresolved" and first.event.status is None
    later = T0 + timedelta(minutes=9)
    again = after_sync(answer(reachable=False), Claimed("p", 3, T0), now=later, policy=POLICY)
    assert (again.result, again.event) == ("provider_unreachable", None)  # said once
    end = T0 + timedelta(minutes=10)
    gave_up = after_sync(answer(reachable=False), Claimed("p", 4, T0), now=end, policy=POLICY)
    assert gave_up.result == "gave_up"
    assert (gave_up.event.status, gave_up.event.detail["reason"]) == (
        "failed",
        "provider_unreachable",
    )


def test_a_provider_without_the_charge_also_ends_in_failure():
    step = after_sync(answer(), Claimed("p", 5, T0), now=T0 + timedelta(hours=1), policy=POLICY)
    assert (step.result, step.event.detail["reason"]) == ("gave_up", "charge_not_found")


def test_backoff_doubles_to_a_cap():
    waits = [(POLICY.next_check(n, T0) - T0).total_seconds() for n in range(8)]
    assert waits == [5, 10, 20, 40, 80, 160, 300, 300]


def test_actions_metric_has_bounded_labels():
    assert reconcile.ACTIONS._labelnames == ("action", "result")
