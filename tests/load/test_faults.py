"""Faults under load (issue #12). While signed creates run through the real Envoy at a steady
modest rate, each fault in turn: ``kill -9`` of every service process (then started again, as a
supervisor would), RabbitMQ's application restarted, Redis restarted (its data lost: it runs
without persistence), PostgreSQL restarted.

For each fault, what clients saw and what was lost. A client sees a 201, or a problem document
with ``Retry-After`` that it honours by retrying with the same Idempotency-Key (409 in flight,
429, 502 reset, 503 unavailable, 504); never a 500, never a body that is not a problem. Lost (must
be 0): a 201'd payment that is not stored, is not final, or whose verified final webhook or any
announced event never reaches the merchant. A retried create must never make two payments.
"""

import asyncio
import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg
import pytest
import requests
from payplane_cli import local
from workers.notifier.config import NotifierSettings

from tests.load.conftest import REROUTE_AFTER_SECONDS
from tests.support import infra
from tests.support.merchant_receiver import VerifyingReceiver
from tests.support.platform import Client, busy_merchant

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

RATE = 12  # new payments per second, spread over SENDERS threads
SENDERS = 4
FAULT_WINDOW = 1.0  # how long a stopped component stays stopped
GIVE_UP = 20.0  # a client stops retrying one create after this long (reported, not lost)
RETRYABLE = {409, 429, 502, 503, 504}
# The longest legitimate wait, then the flow and the webhook: a payment nobody routed is routed
# again after REROUTE_AFTER_SECONDS; a delivery a killed notifier held is retried after its lease.
DRAIN = max(REROUTE_AFTER_SECONDS, NotifierSettings().DELIVERY_LEASE_SECONDS) + 20
SERVICES = ("gateway", "payments", "providers", "webhooks", "merchants", "relay", "notifier")


class Traffic:
    """Signed creates from SENDERS threads at RATE per second, until stopped. Each create is
    retried as a well-behaved client does, until it gets its 201 (or GIVE_UP)."""

    def __init__(self, client: Client, phase: str) -> None:
        self.client, self.phase = client, phase
        self.lock = threading.Lock()
        self.statuses: Counter[int] = Counter()
        self.problems: Counter[str] = Counter()  # "503 database-unavailable": how many
        self.failures: list[tuple[float, float]] = []  # (sent, answered) of each non-201
        self.created: dict[str, tuple[str, float]] = {}  # key -> (payment id, sent)
        self.bad: list[str] = []
        self.abandoned: list[str] = []
        self.slowest = 0.0  # seconds, the longest any answer took
        self.stopping = threading.Event()
        self.numbers = itertools.count()
        self.threads = [threading.Thread(target=self._send, daemon=True) for _ in range(SENDERS)]

    def __enter__(self) -> "Traffic":
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(GIVE_UP + 15)

    def _send(self) -> None:
        interval, next_at = SENDERS / RATE, time.monotonic()
        while not self.stopping.is_set():
            self._create(f"{self.phase}-{next(self.numbers)}")
            next_at = max(next_at + interval, time.monotonic() - interval)
            self.stopping.wait(next_at - time.monotonic())  # the pace, not a wait for a fact

    def _create(self, key: str) -> None:
        body = {"amount": 1000, "currency": "EUR", "description": self.phase}
        first = time.monotonic()
        while time.monotonic() - first < GIVE_UP:
            sent = time.monotonic()
            try:
                response = self.client.post(
                    "/api/v1/payments", body, headers={"Idempotency-Key": key}
                )
            except requests.RequestException as exc:  # Envoy never goes away: always answers
                self._note_bad(f"{key}: no answer: {exc!r}")
                return
            wait = self._note(key, sent, response)
            if wait is None:
                return
            time.sleep(wait)  # the server's Retry-After, as a client must
        with self.lock:
            self.abandoned.append(key)

    def _note(self, key: str, sent: float, response: requests.Response) -> float | None:
        """Seconds to wait before the retry, or None when done with this create."""
        status, answered = response.status_code, time.monotonic()
        with self.lock:
            self.statuses[status] += 1
            self.slowest = max(self.slowest, answered - sent)
            if status == 201:
                payment_id = response.json()["id"]
                earlier = self.created.setdefault(key, (payment_id, sent))[0]
                if earlier != payment_id:
                    self.bad.append(f"{key}: two payments {earlier}, {payment_id}")
                return None
            self.failures.append((sent, answered))
            self.problems[f"{status} {problem_type(response)}"] += 1
        retry_after = response.headers.get("retry-after", "")
        if status in RETRYABLE and retry_after.isdigit() and is_problem(response):
            return float(retry_after)
        self._note_bad(f"{key}: {status} {dict(response.headers)} {response.text[:300]}")
        return None

    def _note_bad(self, what: str) -> None:
        with self.lock:
            self.bad.append(what)

    def created_since(self, since: float) -> int:
        with self.lock:
            return sum(1 for _, sent in self.created.values() if sent >= since)

    def outage(self) -> float:
        """Seconds from the first failed answer's request to the last failed answer."""
        with self.lock:
            if not self.failures:
                return 0.0
            return max(a for _, a in self.failures) - min(s for s, _ in self.failures)


def problem_type(response: requests.Response) -> str:
    try:
        return str(response.json().get("type", "")).rpartition("/")[2] or "?"
    except (ValueError, AttributeError):
        return "not-a-problem"


def is_problem(response: requests.Response) -> bool:
    if not response.headers.get("content-type", "").startswith("application/problem+json"):
        return False
    try:
        problem = response.json()
    except ValueError:
        return False
    return problem.get("status") == response.status_code and bool(problem.get("type"))


@dataclass
class Outcome:
    fault: str
    requests: int
    created: int
    problems: dict[str, int]  # what the other answers were
    abandoned: int
    lost: int
    unacknowledged: int  # stored, but its client never got the 201 (it gave up)
    outage: float  # clients saw failures for this long
    slowest: float  # the longest one answer took
    restart: float  # from the fault until the component was back
    recovered: float  # from the fault until creates sent after it are answered 201 again
    drained: float  # from the fault until the last 201'd payment's final webhook

    def line(self) -> str:
        return (
            f"{self.fault:<18} requests {self.requests:>3}  created {self.created:>3}"
            f"  problems {self.problems}  abandoned {self.abandoned}"
            f"  lost {self.lost}  unacknowledged {self.unacknowledged}  outage {self.outage:.1f}s"
            f"  slowest answer {self.slowest:.1f}s"
            f"  back {self.restart:.1f}s  recovered {self.recovered:.1f}s"
            f"  drained {self.drained:.1f}s"
        )


@pytest.fixture(scope="module")
def own_receiver():
    # Its own merchant endpoint: late redeliveries after a fault never reach another test's.
    receiver = VerifyingReceiver()
    yield receiver
    receiver.close()


@pytest.fixture(scope="module")
def shop(stack, own_receiver) -> Client:
    merchant = busy_merchant(stack, own_receiver, requests_per_second=1_000)
    return Client(stack.url("envoy"), merchant, source_address="127.0.0.61")


def kill9(stack, name: str) -> Callable[[], None]:
    def fault() -> None:
        assert stack.kill(name), f"{name} was not running"
        try:
            time.sleep(FAULT_WINDOW)  # the fault window: nobody restarts it yet
        finally:
            local.up(stack, [name])  # as a supervisor would: started, healthy, registered

    return fault


def stopped(stop: Callable[[], None], start: Callable[[], None]) -> Callable[[], None]:
    def fault() -> None:
        stop()
        try:
            time.sleep(FAULT_WINDOW)  # the fault window
        finally:
            start()

    return fault


def faults(stack) -> dict[str, Callable[[], None]]:
    redis_settings = infra.redis_settings(stack.redis_url)
    # The infrastructure first: a Redis restart frees every lock, which would hide one that a
    # killed service left behind.
    return {
        "rabbitmq": stopped(
            lambda: infra.rabbitmq_app("stop_app"), lambda: infra.rabbitmq_app("start_app")
        ),
        "redis": stopped(
            lambda: infra.redis_stop(stack.redis_url), lambda: infra.redis_start(redis_settings)
        ),
        "postgresql": stopped(lambda: infra.pg("stop"), lambda: infra.pg("start")),
        **{f"kill -9 {name}": kill9(stack, name) for name in SERVICES},
    }


def test_faults_under_load_lose_nothing(stack, shop, own_receiver):
    # Faults one after the other; what each one's payments became is settled at the end, so
    # the pipeline drains one fault's payments while the next fault runs.
    phases = [under_load(shop, name, fault) for name, fault in faults(stack).items()]
    outcomes = [settle(stack, shop, own_receiver, phase) for phase in phases]
    print("\n" + "\n".join(o.line() for o in outcomes))
    for outcome in outcomes:
        assert outcome.lost == 0, outcome.line()
        # One payment per Idempotency-Key: only a create its client gave up on may be unseen.
        assert outcome.unacknowledged <= outcome.abandoned, outcome.line()
        assert not any(p.startswith("500") for p in outcome.problems), outcome.line()
    assert own_receiver.refused == 0


@dataclass
class Phase:
    fault: str
    traffic: "Traffic"
    began: float  # when the fault was injected
    restart: float
    recovered: float


def under_load(shop: Client, fault: str, inject: Callable[[], None]) -> Phase:
    with Traffic(shop, fault.replace(" ", "")) as traffic:
        infra.wait_for(lambda: traffic.created_since(0) >= 3, within=30, what="creates flowing")
        began = time.monotonic()
        inject()
        back = time.monotonic()
        infra.wait_for(
            lambda: traffic.created_since(back) >= 3, within=60, what=f"creates after {fault}"
        )
        recovered = time.monotonic() - began
    assert traffic.bad == [], traffic.bad[:5]
    return Phase(fault, traffic, began, back - began, recovered)


def settle(stack, shop: Client, receiver, phase: Phase) -> Outcome:
    traffic = phase.traffic
    payment_ids = {payment_id for payment_id, _ in traffic.created.values()}
    missing = receiver.wait_final(payment_ids, timeout=DRAIN)
    stored, announced = asyncio.run(
        stored_payments(stack, shop.merchant.merchant_id, traffic.phase)
    )
    undelivered = receiver.wait_all(announced, timeout=DRAIN)
    unfinished = {p for p in payment_ids if stored.get(p) not in ("succeeded", "failed")}
    with receiver.lock:
        last_final = max((receiver.final_at.get(p, 0.0) for p in payment_ids), default=0.0)
    return Outcome(
        fault=phase.fault,
        requests=sum(traffic.statuses.values()),
        created=len(payment_ids),
        problems=dict(traffic.problems),
        abandoned=len(traffic.abandoned),
        lost=len(missing | unfinished | set(undelivered)),
        unacknowledged=len(stored.keys() - payment_ids),
        outage=traffic.outage(),
        slowest=traffic.slowest,
        restart=phase.restart,
        recovered=phase.recovered,
        drained=last_final - phase.began,
    )


async def stored_payments(
    stack, merchant_id: str, phase: str
) -> tuple[dict[str, str], dict[str, set[str]]]:
    """This phase's stored payments (id -> status) and the events announced for each."""
    conn = await asyncpg.connect(stack.database_url("payments").replace("+asyncpg", ""))
    try:
        rows = await conn.fetch(
            "SELECT id, status FROM payments WHERE merchant_id = $1 AND description = $2",
            merchant_id,
            phase,
        )
        events = await conn.fetch(
            "SELECT payment_id, event_type FROM outbox_events WHERE payment_id = ANY($1)",
            [row["id"] for row in rows],
        )
    finally:
        await conn.close()
    announced: dict[str, set[str]] = {}
    for row in events:
        announced.setdefault(row["payment_id"], set()).add(row["event_type"])
    return {row["id"]: row["status"] for row in rows}, announced
