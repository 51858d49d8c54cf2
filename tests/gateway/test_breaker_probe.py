"""Half-open at the gateway: the admission script lets exactly ONE probe through across every
replica (concurrent asks on real Redis), the rest get 503 circuit-open with Retry-After, and a
probe whose outcome never comes back frees its slot when its lease ends."""

import asyncio
import secrets

import pytest
from gateway.admission import Admitter, Verdict
from payplane_core.breaker import CircuitBreaker
from payplane_core.usage import current_period, quota_counter_key

from tests.support.pipeline import wait_until

LEASE = 0.3
MERCHANT = "m-breaker-probe"


async def forget_merchant(redis) -> None:
    await redis.delete(f"gw:bucket:{MERCHANT}", quota_counter_key(MERCHANT, current_period()))


@pytest.fixture
async def probing(redis):
    """A payments breaker tripped and already past its (short) open period: half-open."""
    breaker = CircuitBreaker(
        redis, "cb:test-probe", failure_threshold=1, open_seconds=0.4, min_open_seconds=0.1
    )
    await breaker.reset()
    await forget_merchant(redis)
    assert await breaker.record_failure()

    async def half_open() -> bool:
        return (await breaker.state()).half_open

    await wait_until(half_open, within=2, what="the open period ended")
    yield breaker
    await breaker.reset()
    await forget_merchant(redis)


def replicas(redis, n: int) -> list[Admitter]:
    """Several gateway replicas: separate Admitters sharing one Redis."""
    return [
        Admitter(
            redis, breaker_name="cb:test-probe", nonce_ttl_seconds=60, probe_lease_seconds=LEASE
        )
        for _ in range(n)
    ]


async def ask(admitter: Admitter):
    return await admitter.admit(
        merchant_id=MERCHANT,
        key_id="k",
        nonce=secrets.token_hex(8),
        requests_per_second=1000,
        burst=1000,
        payment_creation=True,
        payments_per_month=1000,
    )


async def test_open_refuses_with_the_time_left(redis):
    breaker = CircuitBreaker(redis, "cb:test-probe", failure_threshold=1, open_seconds=5)
    await breaker.reset()
    try:
        assert await breaker.record_failure()
        answer = await ask(replicas(redis, 1)[0])
        assert answer.verdict is Verdict.CIRCUIT_OPEN and 4 < answer.retry_after_seconds <= 5
    finally:
        await breaker.reset()


async def test_exactly_one_probe_under_concurrent_asks(redis, probing):
    admitters = replicas(redis, 4)
    answers = await asyncio.gather(*(ask(admitters[i % 4]) for i in range(40)))
    verdicts = [a.verdict for a in answers]
    assert verdicts.count(Verdict.ALLOWED) == 1
    assert [a.probe for a in answers] == [a.verdict is Verdict.ALLOWED for a in answers]
    assert verdicts.count(Verdict.CIRCUIT_OPEN) == 39
    assert all(
        0 < a.retry_after_seconds <= LEASE for a in answers if a.verdict is Verdict.CIRCUIT_OPEN
    )


async def test_probe_success_closes_and_failure_reopens(redis, probing):
    admitter = replicas(redis, 1)[0]
    assert (await ask(admitter)).verdict is Verdict.ALLOWED  # the probe
    assert await probing.record_failure()  # ... failed: open again, for longer
    answer = await ask(admitter)
    assert answer.verdict is Verdict.CIRCUIT_OPEN and 0 < answer.retry_after_seconds <= 0.2
    assert int(await redis.get(probing.tripped_key)) == 200  # twice the first 100 ms

    async def probe_admitted() -> bool:
        return (await ask(admitter)).verdict is Verdict.ALLOWED

    await wait_until(probe_admitted, within=2, what="the next probe")
    assert await probing.record_success(clear_failures=False)  # ... succeeded: closed
    answers = await asyncio.gather(*(ask(admitter) for _ in range(10)))
    assert all(a.verdict is Verdict.ALLOWED and not a.probe for a in answers)


async def test_a_lost_probe_is_retried_after_its_lease(redis, probing):
    admitter = replicas(redis, 1)[0]
    assert (await ask(admitter)).verdict is Verdict.ALLOWED  # the probe, never reported
    assert (await ask(admitter)).verdict is Verdict.CIRCUIT_OPEN

    async def probe_admitted() -> bool:
        return (await ask(admitter)).verdict is Verdict.ALLOWED

    await wait_until(probe_admitted, within=LEASE + 2, what="a new probe after the lease")
    assert (await ask(admitter)).verdict is Verdict.CIRCUIT_OPEN  # one at a time again


async def test_a_probe_refused_for_its_own_reasons_takes_no_lease(redis, probing):
    """Nothing is consumed unless everything passes: a replayed nonce is not the probe."""
    admitter = replicas(redis, 1)[0]
    answer = await admitter.admit(
        merchant_id=MERCHANT,
        key_id="k",
        nonce=None,
        requests_per_second=1000,
        burst=1000,
        payment_creation=True,
        payments_per_month=0,
    )
    assert answer.verdict is Verdict.QUOTA_EXCEEDED
    assert await redis.exists(probing.probe_key) == 0
    assert (await ask(admitter)).verdict is Verdict.ALLOWED
