"""Issue 6 end to end through Envoy: a payment goes to a simulated provider, its signed outcome
comes back through the ingress to the webhooks service, and the merchant gets the verified
final webhook, through the outbox relay and the notifier."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from payplane_cli.providers import (
    SIMULATORS,
    list_providers,
    register_provider,
    simulator_credentials,
)
from standardwebhooks import Webhook

from tests.support.platform import Client, new_merchant

pytestmark = pytest.mark.e2e
HOOK = "/api/v1/payments/webhook"


class MerchantReceiver:
    """A merchant's webhook endpoint: verifies every delivery with the official library."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.secret: str | None = None
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["content-length"]))
                try:
                    event = Webhook(receiver.secret).verify(body, dict(self.headers))
                    receiver.events.append(event)
                    self.send_response(204)
                except Exception:  # noqa: BLE001 - anything unverifiable is refused
                    self.send_response(400)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def final_event(self, payment_id: str, timeout: float = 20) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events:
                if event["data"]["id"] == payment_id and event["type"] in (
                    "payment.succeeded",
                    "payment.failed",
                ):
                    return event
            time.sleep(0.05)
        raise TimeoutError(f"no final webhook for {payment_id}")


@pytest.fixture(scope="module")
def receiver():
    receiver = MerchantReceiver()
    yield receiver
    receiver.server.shutdown()


@pytest.fixture(scope="module")
def shop(stack, ingress_url, receiver) -> Client:
    merchant = new_merchant(stack, webhook_url=receiver.url)
    receiver.secret = merchant.webhook_secret
    return Client(ingress_url, merchant)


@pytest.fixture(scope="module")
def sims(stack):
    clients = {
        name: httpx.Client(
            base_url=stack.url(name),
            headers={"Authorization": f"Bearer {simulator_credentials(stack, name)['api_key']}"},
        )
        for name in SIMULATORS
    }
    yield clients
    for client in clients.values():
        client.put("/v1/control", json={})
        client.close()


@pytest.fixture
def internal(stack):
    with httpx.Client(auth=stack.internal_signer("webhooks"), timeout=10) as client:
        yield client


def pay(shop: Client, amount: int) -> str:
    response = shop.post("/api/v1/payments", {"amount": amount, "currency": "EUR"})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def story(shop: Client, payment_id: str) -> list[tuple[str, str]]:
    tracking = shop.get(f"/api/v1/payments/{payment_id}/tracking").json()
    return [(e["type"], e["status"]) for e in tracking["events"]]


def test_payment_succeeds_and_merchant_gets_verified_webhook(shop, receiver):
    payment_id = pay(shop, 1000)
    assert receiver.final_event(payment_id)["type"] == "payment.succeeded"
    assert story(shop, payment_id) == [
        ("payment.created", "pending"),
        ("provider.accepted", "processing"),
        ("provider.webhook", "succeeded"),
    ]


def test_declined_payment_fails(shop, receiver):
    payment_id = pay(shop, 1051)
    event = receiver.final_event(payment_id)
    assert (event["type"], event["data"]["status"]) == ("payment.failed", "failed")


def test_timeout_fails_over_with_exactly_one_charge(shop, receiver, sims):
    sims["sim-a"].put("/v1/control", json={"latency_ms": 4000})  # registered timeout: 2 s
    try:
        payment_id = pay(shop, 1000)
        assert receiver.final_event(payment_id)["data"]["provider"] == "sim-b"
    finally:
        sims["sim-a"].put("/v1/control", json={})
    # sim-a's held request has ended (answered, its hold over): it must not have charged.
    _wait_for(lambda: sims["sim-a"].get("/v1/stats").json()["in_flight"] == 0, "sim-a idle")
    assert sims["sim-a"].get(f"/v1/charges/{payment_id}").json()["charged"] is False
    assert sims["sim-b"].get(f"/v1/charges/{payment_id}").json()["charged"] is True


def test_circuit_opens_then_closes(stack, shop, receiver, sims):
    creds = simulator_credentials(stack, "sim-a")
    spec = dict(
        endpoint=stack.url("sim-a"),
        api_key=creds["api_key"],
        webhook_secret=creds["webhook_secret"],
        priority=1,
        timeout_ms=2000,
    )
    register_provider(stack, name="sim-a", failure_threshold=2, open_seconds=3, **spec)
    sims["sim-a"].put("/v1/control", json={"error_rate": 1.0})
    try:
        for _ in range(2):
            receiver.final_event(pay(shop, 1000))
        seen = sims["sim-a"].get("/v1/stats").json()["requests_seen"]
        skipped = pay(shop, 1000)
        receiver.final_event(skipped)
        assert ("provider.skipped", "pending") in story(shop, skipped)
        assert sims["sim-a"].get("/v1/stats").json()["requests_seen"] == seen
        sims["sim-a"].put("/v1/control", json={})
        _wait_for(lambda: not _circuit_open(stack, "sim-a"), "sim-a's circuit closed")
        back = pay(shop, 1000)
        assert receiver.final_event(back)["data"]["provider"] == "sim-a"
    finally:
        sims["sim-a"].put("/v1/control", json={})
        register_provider(stack, name="sim-a", failure_threshold=5, open_seconds=30, **spec)


def _wait_for(fact, what: str, within: float = 10) -> None:
    deadline = time.monotonic() + within
    while not fact():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        time.sleep(0.05)


def _circuit_open(stack, name: str) -> bool:
    [provider] = [p for p in list_providers(stack) if p["name"] == name]
    return provider["circuit"]["open"]


def _signed(secret: str, body: bytes, *, msg_id: str, at: float) -> dict:
    from datetime import UTC, datetime

    when = datetime.fromtimestamp(at, tz=UTC)
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at)),
        "webhook-provider": "sim-a",
        "webhook-signature": Webhook(secret).sign(msg_id, when, body.decode()),
    }


def test_forged_stale_and_replayed_webhooks_are_403_and_audited(stack, ingress_url, internal):
    secret = simulator_credentials(stack, "sim-a")["webhook_secret"]
    data = {"payment_id": "pay_nope", "amount": 1000, "currency": "EUR"}
    body = json.dumps({"type": "charge.succeeded", "data": data}).encode()
    msg_id = f"msg_e2e_{time.time_ns()}"
    good = _signed(secret, body, msg_id=msg_id, at=time.time())
    cases = {
        "bad-signature": (
            body,
            _signed(
                "whsec_" + "Zm9yZ2VkLWZvcmdlZC1mb3JnZWQ=", body, msg_id=msg_id + "f", at=time.time()
            ),
        ),
        "stale": (body, _signed(secret, body, msg_id=msg_id + "s", at=time.time() - 3600)),
        "unsigned": (body, {"content-type": "application/json"}),
    }
    for reason, (raw, headers) in cases.items():
        response = httpx.post(ingress_url + HOOK, content=raw, headers=headers)
        assert response.status_code == 403, (reason, response.text)
    assert httpx.post(ingress_url + HOOK, content=body, headers=good).status_code == 200
    replay = httpx.post(ingress_url + HOOK, content=body, headers=good)
    assert (replay.status_code, replay.json()["reason"]) == (403, "replayed")
    logs = internal.get(
        stack.url("webhooks") + "/internal/v1/webhook-logs",
        params={"verdict": "rejected", "limit": 100},
    ).json()["data"]
    reasons = {row["reason"] for row in logs}
    assert {"bad-signature", "stale", "unsigned", "replayed"} <= reasons


def test_duplicate_provider_webhook_changes_nothing(shop, receiver, sims, stack, internal):
    payment_id = pay(shop, 1000)
    receiver.final_event(payment_id)
    before = story(shop, payment_id)
    charge_owner = next(
        n for n, s in sims.items() if s.get(f"/v1/charges/{payment_id}").status_code == 200
    )
    assert sims[charge_owner].post(f"/v1/charges/{payment_id}/resend-webhook").status_code == 202
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        rows = internal.get(
            stack.url("webhooks") + "/internal/v1/webhook-logs", params={"payment_id": payment_id}
        ).json()["data"]
        if any(r["verdict"] == "duplicate" for r in rows):
            break
        time.sleep(0.1)
    assert story(shop, payment_id) == before
    assert [e["type"] for e in receiver.events if e["data"]["id"] == payment_id].count(
        "payment.succeeded"
    ) == 1


def test_a_5xx_after_the_charge_does_not_lead_to_a_double_charge(shop, receiver, sims):
    """sim-a charges, then answers 500. Taken as "not charged", this would fail over and charge
    again at sim-b; taken as ambiguous, the cancel at sim-a says "already charged" and the
    payment stays there."""
    before = {n: s.get("/v1/stats").json()["charges_made"] for n, s in sims.items()}
    sims["sim-a"].put("/v1/control", json={"error_after_charge_rate": 1.0})
    try:
        payment_id = pay(shop, 1000)
        final = receiver.final_event(payment_id)
    finally:
        sims["sim-a"].put("/v1/control", json={})
    assert (final["type"], final["data"]["provider"]) == ("payment.succeeded", "sim-a")
    assert sims["sim-b"].get(f"/v1/charges/{payment_id}").status_code == 404
    after = {n: s.get("/v1/stats").json()["charges_made"] for n, s in sims.items()}
    assert (after["sim-a"] - before["sim-a"], after["sim-b"] - before["sim-b"]) == (1, 0)


def test_a_callback_from_the_wrong_provider_is_refused(
    shop, receiver, stack, ingress_url, internal
):
    """The payment is held by one simulator; the other, correctly signed, reports it failed: a
    409 problem through the ingress, audited as rejected, and the payment stays succeeded."""
    payment_id = pay(shop, 1000)
    holder = receiver.final_event(payment_id)["data"]["provider"]
    other = next(name for name in SIMULATORS if name != holder)
    before = story(shop, payment_id)
    secret = simulator_credentials(stack, other)["webhook_secret"]
    data = {"payment_id": payment_id, "amount": 1000, "currency": "EUR", "status": "failed"}
    body = json.dumps({"type": "charge.failed", "data": data}).encode()
    headers = _signed(secret, body, msg_id=f"msg_wrong_{payment_id}", at=time.time())
    headers["webhook-provider"] = other
    answer = httpx.post(ingress_url + HOOK, content=body, headers=headers)
    assert answer.status_code == 409, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["reason"] == "wrong-provider"
    assert story(shop, payment_id) == before
    rows = internal.get(
        stack.url("webhooks") + "/internal/v1/webhook-logs",
        params={"payment_id": payment_id, "verdict": "rejected"},
    ).json()["data"]
    assert [(r["provider"], r["reason"]) for r in rows] == [(other, "wrong-provider")]
