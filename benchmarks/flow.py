"""End to end: create a payment through Envoy → provider simulator → signed provider webhook →
payments → relay → notifier → the merchant's verified final webhook. Reports p50/p99 of that
whole path at a fixed arrival rate (open loop: requests are sent on schedule, not as fast as
answers come back)."""

import json
import secrets
import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests
from payplane_cli import local
from payplane_cli.merchants import create_merchant
from payplane_cli.stack import Stack
from standardwebhooks import Webhook

from benchmarks.signing import merchant_auth

RATES = (5, 20)  # payments per second: light load, then near what 2 shared cores sustain
SECONDS = 10
FINAL = ("payment.succeeded", "payment.failed")


class Receiver:
    """The merchant's endpoint: verifies each delivery and notes when the final one arrived."""

    def __init__(self, secret: str | None = None) -> None:
        self.secret = secret
        self.arrived: dict[str, float] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["content-length"]))
                event = Webhook(receiver.secret).verify(body, dict(self.headers))
                if event["type"] in FINAL:
                    receiver.arrived.setdefault(event["data"]["id"], time.perf_counter())
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def unlimited_merchant(stack: Stack, receiver: Receiver, prefix: str) -> dict[str, str]:
    """A merchant no limit or quota gets in the way of, whose webhooks ``receiver`` verifies."""
    creds = create_merchant(
        stack,
        name=f"{prefix}-{secrets.token_hex(3)}",
        webhook_url=receiver.url,
        requests_per_second=1e4,
        burst=10**5,
        payments_per_month=10**9,
    )["credentials"]
    receiver.secret = creds["webhook_secret"]
    return creds


def payment_poster(stack: Stack, creds: dict[str, str]) -> Callable[[dict], requests.Response]:
    """POST /api/v1/payments through Envoy as the merchant: one keep-alive session, each request
    signed (RFC 9421, with a nonce) as the gateway requires."""
    session = requests.Session()
    auth = merchant_auth(creds)
    url = stack.url("envoy") + "/api/v1/payments"
    headers = {"Authorization": f"Bearer {creds['api_key']}", "Content-Type": "application/json"}

    def post(body: dict) -> requests.Response:
        return session.post(url, data=json.dumps(body), headers=headers, auth=auth, timeout=10)

    return post


def run_bench() -> None:
    stack = Stack.for_bench()
    local.fresh_up(stack)
    receiver = Receiver()
    try:
        creds = unlimited_merchant(stack, receiver, "bench-flow")
        post = payment_poster(stack, creds)

        def create(started: dict[str, float]) -> None:
            begin = time.perf_counter()
            response = post({"amount": 1000, "currency": "EUR"})
            if response.status_code == 201:
                started[response.json()["id"]] = begin

        for rate in RATES:
            started: dict[str, float] = {}
            total = rate * SECONDS
            with ThreadPoolExecutor(max_workers=32) as pool:
                t0 = time.perf_counter()
                for i in range(total):
                    time.sleep(max(0.0, t0 + i / rate - time.perf_counter()))
                    pool.submit(create, started)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not set(started) <= set(receiver.arrived):
                time.sleep(0.1)
            latencies = sorted(
                (receiver.arrived[p] - t) * 1000
                for p, t in started.items()
                if p in receiver.arrived
            )
            if len(latencies) < 2:
                print(f"  no complete flows at {rate}/s ({len(started)} created)")
                continue
            p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
            print(
                f"  create → merchant's verified final webhook at {rate}/s for {SECONDS}s: "
                f"{len(latencies)}/{total} complete, p50 {statistics.median(latencies):.0f} ms, "
                f"p99 {p99:.0f} ms (simulator callback delay 50 ms included)"
            )
    finally:
        receiver.server.shutdown()
        local.down(stack)
