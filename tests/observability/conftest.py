"""One platform for the observability tests, exporting traces to an OTLP/HTTP receiver started
here and scraped by its own Prometheus every second, and one burst of real traffic."""

import dataclasses
import gzip
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from payplane_cli import local
from payplane_cli.providers import simulator_credentials
from payplane_cli.stack import Stack
from standardwebhooks import Webhook

from tests.support.platform import Client, new_merchant


def wait_for(fact: Callable[[], object], *, within: float, what: str):
    """Poll an observable fact until it is truthy; its value is returned."""
    deadline = time.monotonic() + within
    while True:
        value = fact()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {within}s")
        time.sleep(0.2)


class Server:
    """A local HTTP endpoint; ``handle(path, headers, body) -> status``."""

    def __init__(self, handle) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self._body()
                status, reply = handle(self.path, dict(self.headers), body)
                self.send_response(status)
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def _body(self) -> bytes:
                if self.headers.get("transfer-encoding", "").lower() != "chunked":
                    return self.rfile.read(int(self.headers.get("content-length") or 0))
                body = b""  # Envoy's OTLP exporter streams its body in chunks
                while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                    body += self.rfile.read(size)
                    self.rfile.readline()
                self.rfile.readline()
                return body

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class OtlpReceiver(Server):
    """OTLP/HTTP (protobuf) traces receiver: keeps every span with its service name."""

    def __init__(self) -> None:
        self.spans: list[dict] = []
        super().__init__(self._handle)

    def _handle(self, path: str, headers: dict, body: bytes) -> tuple[int, bytes]:
        if path != "/v1/traces":
            return 404, b""
        if headers.get("Content-Encoding", headers.get("content-encoding")) == "gzip":
            body = gzip.decompress(body)
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    self.spans.append(
                        {
                            "service": attributes.get("service.name", ""),
                            "name": span.name,
                            "trace_id": span.trace_id.hex(),
                            "span_id": span.span_id.hex(),
                            "parent_id": span.parent_span_id.hex(),
                        }
                    )
        return 200, ExportTraceServiceResponse().SerializeToString()

    def trace(self, trace_id: str) -> list[dict]:
        return [s for s in list(self.spans) if s["trace_id"] == trace_id]


class MerchantEndpoint(Server):
    """The merchants' webhook endpoint: verifies each delivery; keeps event and headers."""

    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}  # merchant id -> webhook secret
        self.events: list[tuple[dict, dict]] = []
        super().__init__(self._handle)
        self.url = self.base + "/hooks"

    def _handle(self, path: str, headers: dict, body: bytes) -> tuple[int, bytes]:
        for secret in self.secrets.values():
            try:
                event = Webhook(secret).verify(body, headers)
            except Exception:  # noqa: BLE001, S112 - not this merchant's: try the next secret
                continue
            self.events.append((event, {k.lower(): v for k, v in headers.items()}))
            return 204, b""
        return 400, b""

    def final(self, payment_id: str) -> tuple[dict, dict] | None:
        for event, headers in list(self.events):
            if event["data"]["id"] == payment_id and event["type"] in (
                "payment.succeeded",
                "payment.failed",
            ):
                return event, headers
        return None

    def wait_final(self, payment_id: str, within: float = 30) -> tuple[dict, dict]:
        return wait_for(lambda: self.final(payment_id), within=within, what=f"{payment_id} final")


@pytest.fixture(scope="package")
def otlp() -> OtlpReceiver:
    receiver = OtlpReceiver()
    yield receiver
    receiver.server.shutdown()


@pytest.fixture(scope="package")
def merchants_endpoint() -> MerchantEndpoint:
    endpoint = MerchantEndpoint()
    yield endpoint
    endpoint.server.shutdown()


@pytest.fixture(scope="package")
def stack(otlp) -> Stack:
    stack = dataclasses.replace(
        Stack.for_tests(),
        scrape_interval="1s",
        extra_env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.base,
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            "STATS_INTERVAL_SECONDS": "1",
        },
    )
    local.fresh_up(stack)
    yield stack
    local.down(stack)


@pytest.fixture(scope="package")
def shop(stack, merchants_endpoint):
    """A new merchant of the stack whose webhooks reach ``merchants_endpoint``."""

    def make(**options) -> Client:
        merchant = new_merchant(stack, webhook_url=merchants_endpoint.url, **options)
        merchants_endpoint.secrets[merchant.merchant_id] = merchant.webhook_secret
        return Client(stack.url("envoy"), merchant)

    return make


def pay(client: Client, amount: int = 1000) -> str:
    response = client.post("/api/v1/payments", {"amount": amount, "currency": "EUR"})
    assert response.status_code == 201, response.text
    return response.json()["id"]


@pytest.fixture(scope="package")
def traffic(stack, shop, merchants_endpoint) -> dict[str, str]:
    """Successes, a decline, a failing provider (failover), a bad signature, a rate limit."""
    client = shop()
    paid = {"traced": pay(client), "declined": pay(client, 1051)}
    sim_a = httpx.Client(
        base_url=stack.url("sim-a"),
        headers={"Authorization": f"Bearer {simulator_credentials(stack, 'sim-a')['api_key']}"},
    )
    sim_a.put("/v1/control", json={"error_rate": 1.0}).raise_for_status()
    try:
        paid["failed_over"] = pay(client)
        merchants_endpoint.wait_final(paid["failed_over"])
    finally:
        sim_a.put("/v1/control", json={}).raise_for_status()
        sim_a.close()
    forged = client.post("/api/v1/payments", {"amount": 5, "currency": "EUR"}, key=b"forged")
    assert forged.status_code == 403, forged.text
    slow = shop(requests_per_second=1, burst=1)
    statuses = {
        slow.post("/api/v1/payments", {"amount": 7, "currency": "EUR"}).status_code
        for _ in range(4)
    }
    assert 429 in statuses, statuses
    assert client.get(f"/api/v1/payments/{paid['traced']}/tracking").status_code == 200
    for payment_id in paid.values():
        merchants_endpoint.wait_final(payment_id)
    return paid


@pytest.fixture(scope="package")
def prometheus(stack) -> Callable[[str], list[dict]]:
    def query(expr: str) -> list[dict]:
        response = httpx.get(
            stack.url("prometheus") + "/api/v1/query", params={"query": expr}, timeout=10
        )
        body = response.json()
        assert body["status"] == "success", (expr, body)
        return body["data"]["result"]

    return query
