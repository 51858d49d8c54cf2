"""``payplane webhooks listen``: verifies with the official library, refuses forgeries."""

import base64
import json
import threading
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer

import httpx
import pytest
from payplane_cli.receiver import handler_for
from standardwebhooks.webhooks import Webhook

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


@pytest.fixture
def listener():
    seen: set[str] = set()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(SECRET, seen))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/webhooks"
    server.shutdown()


def signed(secret: str, body: str, webhook_id: str = "evt_1") -> dict[str, str]:
    now = datetime.now(UTC)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(webhook_id, now, body),
        "content-type": "application/json",
    }


def test_verified_deliveries_are_printed_and_duplicates_marked(listener, capsys):
    body = json.dumps({"type": "payment.succeeded", "data": {"id": "pay_1"}})
    for _ in range(2):
        assert httpx.post(listener, content=body, headers=signed(SECRET, body)).status_code == 204
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(x["webhook_id"], x["duplicate"], x["type"]) for x in lines] == [
        ("evt_1", False, "payment.succeeded"),
        ("evt_1", True, "payment.succeeded"),
    ]


def test_forged_or_tampered_deliveries_are_refused(listener, capsys):
    body = json.dumps({"type": "payment.succeeded"})
    forged = signed("whsec_" + base64.b64encode(b"x" * 32).decode(), body)
    assert httpx.post(listener, content=body, headers=forged).status_code == 400
    tampered = signed(SECRET, body)
    assert httpx.post(listener, content=body + " ", headers=tampered).status_code == 400
    assert capsys.readouterr().out == ""
