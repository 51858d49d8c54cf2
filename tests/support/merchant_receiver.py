"""A merchant's webhook endpoint for load tests: a real HTTP server that verifies every delivery
with the official ``standardwebhooks`` library and remembers, per payment, which events came."""

import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook

FINAL = ("payment.succeeded", "payment.failed")


class VerifyingReceiver:
    def __init__(self) -> None:
        self.secret: str | None = None
        self.lock = threading.Lock()
        self.types: dict[str, set[str]] = defaultdict(set)  # payment id -> event types
        self.final_at: dict[str, float] = {}  # payment id -> monotonic time of its final webhook
        self.refused = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a real endpoint

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers["content-length"])
                try:
                    body = self.rfile.read(length)
                except ConnectionError:
                    body = b""
                if len(body) < length:  # the sender died mid-request (kill -9): no request
                    self.close_connection = True
                    return
                try:
                    event = Webhook(receiver.secret).verify(body, dict(self.headers))
                except Exception:  # noqa: BLE001 - anything unverifiable is refused
                    with receiver.lock:
                        receiver.refused += 1
                    self._answer(400)
                    return
                receiver.record(event)
                self._answer(204)

            def _answer(self, status: int) -> None:
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def record(self, event: dict) -> None:
        payment_id, kind = event["data"]["id"], event["type"]
        with self.lock:
            self.types[payment_id].add(kind)
            if kind in FINAL:
                self.final_at.setdefault(payment_id, time.monotonic())

    def unfinished(self, payment_ids) -> set[str]:
        with self.lock:
            return {p for p in payment_ids if p not in self.final_at}

    def wait_final(self, payment_ids, timeout: float) -> set[str]:
        """Wait until every payment's final webhook arrived; returns those still missing."""
        deadline = time.monotonic() + timeout
        while (missing := self.unfinished(payment_ids)) and time.monotonic() < deadline:
            time.sleep(0.2)
        return missing

    def wait_all(self, expected: dict[str, set[str]], timeout: float) -> dict[str, set[str]]:
        """Wait until each payment's expected event types all arrived; returns what is missing."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                missing = {
                    p: kinds - self.types[p]
                    for p, kinds in expected.items()
                    if kinds - self.types[p]
                }
            if not missing or time.monotonic() >= deadline:
                return missing
            time.sleep(0.2)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
