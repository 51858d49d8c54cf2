"""Sustained load, open loop: payments offered at 50, 100 and 150 per second for a while, each
through Envoy, the provider simulator and its callback, to the merchant's verified final
webhook. Reports what the platform delivered end to end (payments/s), the time until the last
final webhook, and how many payments were left unfinished (must be 0). A 429 or 503 answer
(or 409 while the same key is still in flight) is honoured: the client waits its Retry-After
and sends the same Idempotency-Key again, as a merchant would; a 500 fails the bench."""

import json
import secrets
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import requests
from payplane_cli import local
from payplane_cli.stack import Stack

from benchmarks.flow import Receiver, unlimited_merchant
from benchmarks.signing import merchant_auth

RATES = (50, 100, 150)  # payments offered per second
SECONDS = 10
DRAIN_SECONDS = 300  # how long to wait for the last final webhook


class Merchant:
    def __init__(self, stack: Stack, receiver: Receiver) -> None:
        creds = unlimited_merchant(stack, receiver, "bench-sustained")
        self.url = stack.url("envoy") + "/api/v1/payments"
        self.api_key = creds["api_key"]
        self.auth = merchant_auth(creds)
        self.local = threading.local()
        self.lock = threading.Lock()
        self.answers: Counter[int | str] = Counter()

    def create(self, key: str, created: dict[str, float]) -> None:
        """One payment, retried on 429/503 after Retry-After with the same Idempotency-Key."""
        try:
            self._create(key, created)
        except requests.RequestException as exc:  # counted, never lost silently in the pool
            with self.lock:
                self.answers[type(exc).__name__] += 1

    def _create(self, key: str, created: dict[str, float]) -> None:
        session = getattr(self.local, "session", None) or requests.Session()
        self.local.session = session
        begin = time.perf_counter()
        while True:
            response = session.post(
                self.url,
                data=json.dumps({"amount": 1000, "currency": "EUR"}),
                headers={
                    "Authorization": f"Bearer {self.api_key}",
                    "Content-Type": "application/json",
                    "Idempotency-Key": key,
                },
                auth=self.auth,
                timeout=30,
            )
            with self.lock:
                self.answers[response.status_code] += 1
            if response.status_code == 201:
                created[response.json()["id"]] = begin
                return
            # 409: this key's first attempt is still in flight (after a 503 it may have been
            # slow, not lost): the idempotency contract says retry after Retry-After, as here.
            if response.status_code not in (409, 429, 503):
                return
            time.sleep(float(response.headers.get("retry-after", "1")))


def offer(merchant: Merchant, receiver: Receiver, rate: int) -> str:
    created: dict[str, float] = {}
    total = rate * SECONDS
    run = secrets.token_hex(4)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=64) as pool:
        for i in range(total):
            time.sleep(max(0.0, t0 + i / rate - time.perf_counter()))  # open loop: on schedule
            pool.submit(merchant.create, f"{run}-{i}", created)
    deadline = time.monotonic() + DRAIN_SECONDS
    while time.monotonic() < deadline and not set(created) <= set(receiver.arrived):
        time.sleep(0.1)
    finished = [receiver.arrived[p] for p in created if p in receiver.arrived]
    last = (max(finished) - t0) if finished else float("nan")
    return (
        f"  offered {rate:>3}/s for {SECONDS}s: {len(created)}/{total} created, "
        f"{len(finished)} final webhooks, {len(finished) / last:.0f} payments/s end to end, "
        f"last final webhook after {last:.1f}s, unfinished {len(created) - len(finished)}"
    )


def run_bench() -> None:
    stack = Stack.for_bench()
    local.fresh_up(stack)
    receiver = Receiver()
    try:
        merchant = Merchant(stack, receiver)
        for rate in RATES:
            print(offer(merchant, receiver, rate), flush=True)
        answers = dict(merchant.answers)
        print(f"  answers to creates: {answers} (a 500 would be a failure)")
        if merchant.answers[500]:
            raise RuntimeError(f"{merchant.answers[500]} answers of 500 under load")
    finally:
        receiver.server.shutdown()
        local.down(stack)
