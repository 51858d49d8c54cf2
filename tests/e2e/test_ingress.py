"""Through the real Envoy and gateway, signing with an independent RFC 9421 client."""

import asyncio
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import aiohttp
import pytest
import requests
from payplane_cli import ingress as local_ingress
from payplane_core.internal_auth import INTERNAL_HEADERS, PROBE
from payplane_ingress.files import write_dynamic
from payplane_ingress.model import Route, Upstream
from prometheus_client.parser import text_string_to_metric_families

from tests.support.infra import wait_for
from tests.support.platform import Client, new_merchant
from tests.support.redis_monitor import monitored

PROBLEM = "application/problem+json"
SECURITY = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}
# Each spoofed with a value that would matter if it got through: another merchant, the probe mark.
SPOOFED = {name: "spoofed" for name in INTERNAL_HEADERS} | {
    "x-payplane-merchant-id": "mer_victim",
    PROBE: "1",
}


def assert_problem(response, status: int, reason: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert {"type", "title", "status", "detail", "request_id"} <= set(body)
    assert body["request_id"] == response.headers["x-request-id"]
    if reason:
        assert body["type"].endswith("/" + reason), body
    return body


def test_create_list_show_and_track(client, merchant):
    created = client.post(
        "/api/v1/payments",
        {"amount": 4200, "currency": "EUR"},
        headers={"Idempotency-Key": "e2e-1"},
    )
    assert created.status_code == 201, created.text
    payment = created.json()
    assert payment["merchant_id"] == merchant.merchant_id

    replay = client.post(
        "/api/v1/payments",
        {"amount": 4200, "currency": "EUR"},
        headers={"Idempotency-Key": "e2e-1"},
    )
    assert replay.status_code == 201 and replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["id"] == payment["id"]

    shown = client.get(f"/api/v1/payments/{payment['id']}/show")
    assert shown.status_code == 200 and shown.json()["id"] == payment["id"]
    listed = client.get("/api/v1/payments", params={"limit": 5})
    assert payment["id"] in [p["id"] for p in listed.json()["data"]]
    tracking = client.get(f"/api/v1/payments/{payment['id']}/tracking").json()
    assert tracking["payment_id"] == payment["id"]
    assert tracking["events"][0]["type"] == "payment.created"

    # The API key reads too; another merchant gets 404 for this payment.
    assert client.get(f"/api/v1/payments/{payment['id']}/show", bearer=merchant.api_key).ok


def test_other_merchants_payment_is_404(stack, ingress_url, client):
    payment = client.post("/api/v1/payments", {"amount": 1, "currency": "USD"}).json()
    other = Client(ingress_url, new_merchant(stack))
    assert_problem(other.get(f"/api/v1/payments/{payment['id']}/show"), 404)


def test_forged_replayed_and_tampered_requests_are_refused(client, merchant):
    body = {"amount": 100, "currency": "EUR"}
    assert_problem(client.post("/api/v1/payments", body, bearer="pk_unknown"), 401)
    assert_problem(client.post("/api/v1/payments", body, headers={"Authorization": ""}), 401)
    assert_problem(client.post("/api/v1/payments", body, bearer=merchant.read_key), 403)
    assert_problem(client.post("/api/v1/payments", body, sign=False), 403)
    assert_problem(client.post("/api/v1/payments", body, key=b"forged-secret"), 403)

    signed = requests.Request(
        "POST",
        client.base + "/api/v1/payments",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {merchant.api_key}", "Content-Type": "application/json"},
    ).prepare()
    client.signer()(signed)
    assert client.send(signed.copy()).status_code == 201
    assert_problem(client.send(signed.copy()), 403)  # the same nonce again: a replay

    tampered = requests.Request(
        "POST",
        client.base + "/api/v1/payments",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {merchant.api_key}", "Content-Type": "application/json"},
    ).prepare()
    client.signer()(tampered)
    tampered.body = json.dumps(body | {"amount": 100000}).encode()
    tampered.headers["Content-Length"] = str(len(tampered.body))
    assert_problem(client.send(tampered), 403)


async def test_spoofed_internal_headers_are_ignored(stack, client, merchant):
    settled = breaker_reports(stack)
    async with monitored(stack.redis_url) as seen:
        created = client.post("/api/v1/payments", {"amount": 5, "currency": "EUR"}, headers=SPOOFED)
        assert created.status_code == 201, created.text
        assert created.json()["merchant_id"] == merchant.merchant_id
        # Payments reports after answering: wait until it has settled this create's report.
        await asyncio.to_thread(
            wait_for,
            lambda: breaker_reports(stack) > settled,
            within=10,
            what="payments settling the create's breaker report",
        )
        breaker = await seen("cb:payments")
    # The gateway's admission reads the breaker; payments, had it taken the spoofed probe mark
    # as genuine, would have run the success script (it alone names the failures key).
    assert breaker and not [c for c in breaker if "cb:payments:failures" in c], breaker


def breaker_reports(stack) -> float:
    """How many creates payments' FailureReporter has settled, whatever it reported."""
    text = requests.get(stack.url("payments") + "/metrics", timeout=5).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "payplane_breaker_reports_total"
    )


def test_direct_calls_to_services_are_401(stack):
    probes = {
        "payments": ("GET", "/api/v1/payments"),
        "merchants": ("GET", "/internal/v1/merchants/by-name/anyone"),
        "webhooks": ("POST", "/api/v1/payments/webhook"),
        "providers": ("GET", "/internal/v1/providers"),
    }
    from payplane_cli.stack import PROCESSES

    tried = 0
    for name, (method, path) in probes.items():
        if name not in PROCESSES:
            continue
        response = requests.request(method, stack.url(name) + path, headers=SPOOFED, timeout=5)
        assert_problem(response, 401)
        tried += 1
    assert tried >= 2


def test_oversized_body_is_413(client):
    huge = {"amount": 1, "currency": "EUR", "description": "x" * 70_000}
    assert_problem(client.post("/api/v1/payments", huge), 413, "body-too-large")


def test_unknown_routes_404_and_wrong_methods_405(client, ingress_url):
    assert_problem(requests.get(ingress_url + "/api/v2/payments", timeout=5), 404, "not-found")
    assert_problem(requests.get(ingress_url + "/admin", timeout=5), 404)
    wrong = requests.delete(ingress_url + "/api/v1/payments", timeout=5)
    assert_problem(wrong, 405, "method-not-allowed")
    assert wrong.headers["allow"] == "GET, POST"
    assert_problem(requests.put(ingress_url + "/api/v1/payments/pay_x/show", timeout=5), 405)


def test_every_response_has_security_headers_and_a_request_id(client, ingress_url):
    responses = [
        requests.get(ingress_url + "/health", timeout=5),
        client.get("/api/v1/payments"),
        client.post("/api/v1/payments", {"amount": 1, "currency": "EUR"}),
        requests.get(ingress_url + "/nope", timeout=5),
        requests.delete(ingress_url + "/api/v1/payments", timeout=5),
        client.get("/api/v1/payments", bearer="rk_nobody"),
        client.post("/api/v1/payments", {"amount": 1, "currency": "EUR"}, sign=False),
        client.post("/api/v1/payments", {"amount": 0, "currency": "EUR"}),
    ]
    assert {r.status_code for r in responses} == {200, 201, 404, 405, 401, 403, 422}
    for response in responses:
        for name, value in SECURITY.items():
            assert response.headers.get(name) == value, (response.status_code, name)
        assert "server" not in response.headers
        assert response.headers["x-request-id"]


def test_a_client_request_id_is_kept(client):
    response = client.get("/api/v1/payments", headers={"X-Request-Id": "merchant-trace-42"})
    assert response.headers["x-request-id"] == "merchant-trace-42"
    denied = client.get(
        "/api/v1/payments", bearer="rk_nobody", headers={"X-Request-Id": "trace-43"}
    )
    assert denied.json()["request_id"] == "trace-43"


def test_per_ip_rate_limit_answers_429_after_the_burst(stack, ingress_url):
    async def burst(source: str, count: int) -> dict[int, int]:
        connector = aiohttp.TCPConnector(limit=64, local_addr=(source, 0))
        statuses: dict[int, int] = {}
        async with aiohttp.ClientSession(connector=connector) as session:

            async def one() -> None:
                async with session.get(ingress_url + "/health") as response:
                    await response.read()
                    statuses[response.status] = statuses.get(response.status, 0) + 1
                    if response.status == 429:
                        assert response.headers["retry-after"]
                        assert response.headers["content-type"] == PROBLEM

            await asyncio.gather(*(one() for _ in range(count)))
        return statuses

    flood = asyncio.run(burst("127.0.0.77", stack.ingress_ip_burst + 2 * stack.ingress_ip_rps))
    assert flood.get(429, 0) > 0, flood
    assert flood.get(200, 0) >= stack.ingress_ip_burst
    # Another client address has its own bucket.
    assert asyncio.run(burst("127.0.0.78", 10)) == {200: 10}


class _Echo(BaseHTTPRequestHandler):
    seen: list[dict[str, str]] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        _Echo.seen.append({k.lower(): v for k, v in self.headers.items()})
        body = b'{"echo":true}'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def echo_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()


def test_a_route_added_by_swapping_files_is_live_within_a_second(stack, client, echo_server):
    base = local_ingress.ingress_for(stack)
    dynamic_dir = local_ingress.config_dir(stack) / "dynamic"
    extended = type(base)(
        **{
            **base.__dict__,
            "upstreams": (*base.upstreams, Upstream("echo", "127.0.0.1", echo_server)),
            "routes": (
                *base.routes,
                Route("echo", ("GET",), "echo", path="/echo", authorize=False),
            ),
        }
    )
    failures, done = [], threading.Event()

    def traffic() -> None:  # requests running across the swap
        while not done.is_set():
            for response in (
                client.get("/api/v1/payments", params={"limit": 1}),
                requests.get(client.base + "/health", timeout=5),
            ):
                if response.status_code != 200:
                    failures.append(response.status_code)

    runner = threading.Thread(target=traffic)
    runner.start()
    try:
        assert requests.get(client.base + "/echo", timeout=5).status_code == 404
        swapped = time.monotonic()
        write_dynamic(extended, dynamic_dir)
        while requests.get(client.base + "/echo", headers=SPOOFED, timeout=5).status_code != 200:
            assert time.monotonic() - swapped < 1.0, "route not live within a second"
            time.sleep(0.02)
        live_after = time.monotonic() - swapped
        # What reached the upstream: none of the spoofed internal headers.
        assert _Echo.seen and not set(INTERNAL_HEADERS) & set(_Echo.seen[-1])
        write_dynamic(base, dynamic_dir)  # and back
        deadline = time.monotonic() + 2
        while requests.get(client.base + "/echo", timeout=5).status_code != 404:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        done.set()
        runner.join()
    assert failures == []
    print(f"route live {live_after * 1000:.0f} ms after the swap")
