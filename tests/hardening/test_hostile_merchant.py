"""A hostile merchant through the real Envoy: every string it controls × every kind of
unstorable, oversized or odd text. Each answer is < 500, and every 4xx is a problem document;
afterwards another merchant still creates payments and the payments breaker is closed."""

import asyncio
import json
from urllib.parse import quote

import pytest
import redis
import requests
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support import rawhttp

PROBLEM = "application/problem+json"
RTL = "\u202eabc\u0301e\u0300\u05d0"  # right-to-left override, combining marks, Hebrew
# Each hostile value as it travels in a JSON string, in a header and in a URL.
JSON_VALUES = {
    "nul": b"x\\u0000y",
    "surrogate": b"x\\ud800y",
    "10kB": b"x" * 10_240,
    "rtl-combining": json.dumps(RTL)[1:-1].encode(),
    "invalid-utf8": b"x\xff\xfey",
}
RAW_VALUES = {
    "nul": b"x\x00y",
    "surrogate": b"x\xed\xa0\x80y",  # a surrogate encoded as if it were UTF-8
    "10kB": b"x" * 10_240,
    "rtl-combining": RTL.encode(),
    "invalid-utf8": b"x\xff\xfey",
}
URL_VALUES = {name: quote(value, safe="").encode() for name, value in RAW_VALUES.items()}
VALID_TEXT = {"rtl-combining"}  # valid Unicode: may legitimately succeed
BODIES = {
    "description": b'{"amount": 100, "currency": "EUR", "description": "%s"}',
    "metadata-value": b'{"amount": 100, "currency": "EUR", "metadata": {"k": "%s"}}',
    "metadata-key": b'{"amount": 100, "currency": "EUR", "metadata": {"%s": "v"}}',
    "currency": b'{"amount": 100, "currency": "%s"}',
}


def check(status: int, headers: dict, body: bytes, kind: str) -> None:
    """Never 5xx; a 4xx is always a problem; only valid text may succeed (or be unknown)."""
    assert status < 500, (status, body[:300])
    if status >= 400:
        assert headers["content-type"] == PROBLEM, (status, headers, body[:300])
        problem = json.loads(body)
        assert problem["status"] == status and problem["type"] and problem["title"]
    else:
        assert kind in VALID_TEXT, (status, body[:300])


def signed_headers(client, method: str, path: str, body: bytes) -> list[tuple[bytes, bytes]]:
    """RFC 9421 headers for ``body`` (signed by the merchant's independent client library)."""
    prepared = requests.Request(
        method,
        client.base + path,
        data=body,
        headers={
            "Authorization": f"Bearer {client.merchant.api_key}",
            "Content-Type": "application/json",
        },
    ).prepare()
    client.signer()(prepared)
    skip = {"content-length", "host"}
    return [
        (k.lower().encode(), v.encode("latin-1"))
        for k, v in prepared.headers.items()
        if k.lower() not in skip
    ]


@pytest.mark.parametrize("kind", list(JSON_VALUES))
@pytest.mark.parametrize("field", list(BODIES))
def test_body_fields(hostile, field, kind):
    body = BODIES[field].replace(b"%s", JSON_VALUES[kind])
    headers = signed_headers(hostile, "POST", "/api/v1/payments", body)
    answer = rawhttp.send(hostile.base, "POST", b"/api/v1/payments", headers, body)
    check(answer.status, answer.headers, answer.body, kind)


@pytest.mark.parametrize("kind", list(RAW_VALUES))
def test_idempotency_key_header(hostile, kind):
    body = b'{"amount": 100, "currency": "EUR"}'
    headers = signed_headers(hostile, "POST", "/api/v1/payments", body)
    headers.append((b"idempotency-key", RAW_VALUES[kind]))
    answer = rawhttp.send(hostile.base, "POST", b"/api/v1/payments", headers, body)
    check(answer.status, answer.headers, answer.body, kind)


@pytest.mark.parametrize("kind", list(URL_VALUES))
@pytest.mark.parametrize(
    "target",
    [
        b"/api/v1/payments?starting_after=pay_%s",
        b"/api/v1/payments/pay_%s/show",
        b"/api/v1/payments/pay_%s/tracking",
        b"/api/v1/payments?limit=%s",
    ],
    ids=["starting_after", "show-id", "tracking-id", "limit"],
)
def test_query_and_path(hostile, target, kind):
    auth = [(b"authorization", f"Bearer {hostile.merchant.read_key}".encode())]
    answer = rawhttp.send(hostile.base, "GET", target.replace(b"%s", URL_VALUES[kind]), auth)
    check(answer.status, answer.headers, answer.body, kind)


def test_duplicated_headers_and_fields_are_4xx(hostile):
    body = b'{"amount": 100, "currency": "EUR"}'
    headers = signed_headers(hostile, "POST", "/api/v1/payments", body)
    twice = [*headers, (b"idempotency-key", b"one"), (b"idempotency-key", b"two")]
    answer = rawhttp.send(hostile.base, "POST", b"/api/v1/payments", twice, body)
    check(answer.status, answer.headers, answer.body, "duplicate")
    doubled = b'{"amount": 100, "currency": "EUR", "amount": 100000}'
    headers = signed_headers(hostile, "POST", "/api/v1/payments", doubled)
    answer = rawhttp.send(hostile.base, "POST", b"/api/v1/payments", headers, doubled)
    check(answer.status, answer.headers, answer.body, "duplicate")
    assert answer.json()["type"].endswith("/duplicate-json-field")


def audit_rows(stack, request_ids: list[str]) -> set[str]:
    async def query() -> set[str]:
        engine = create_async_engine(stack.database_url("logs"))
        try:
            async with engine.connect() as conn:
                rows = await conn.execute(
                    text("SELECT request_id FROM webhook_logs WHERE request_id = ANY(:ids)"),
                    {"ids": request_ids},
                )
                return {row.request_id for row in rows}
        finally:
            await engine.dispose()

    return asyncio.run(query())


def test_provider_webhook_route(stack, hostile):
    """Unauthenticated input: refused with a problem, and every refusal leaves an audit row."""
    seen: list[str] = []
    for value in RAW_VALUES.values():
        for name in (b"webhook-id", b"webhook-provider", b"webhook-signature"):
            headers = [
                (b"content-type", b"application/json"),
                (b"webhook-id", b"msg_1"),
                (b"webhook-timestamp", b"1700000000"),
                (b"webhook-signature", b"v1,AAAA"),
            ]
            headers = [(n, v) for n, v in headers if n != name] + [(name, value)]
            answer = rawhttp.send(hostile.base, "POST", b"/api/v1/payments/webhook", headers, b"{}")
            check(answer.status, answer.headers, answer.body, "webhook")
            if answer.status in (400, 403) and "x-request-id" in answer.headers:
                body = answer.json()
                if "log_id" in body:
                    seen.append(answer.headers["x-request-id"])
        body = b'{"type": "charge.succeeded", "data": {"payment_id": "' + value + b'"}}'
        headers = [(b"content-type", b"application/json"), (b"webhook-id", b"m")]
        answer = rawhttp.send(hostile.base, "POST", b"/api/v1/payments/webhook", headers, body)
        check(answer.status, answer.headers, answer.body, "webhook")
        seen.append(answer.headers["x-request-id"])
    assert set(seen) == audit_rows(stack, seen)


def test_other_merchants_are_unaffected_afterwards(stack, hostile, bystander):
    """Runs last in this module: the hostile traffic above left the platform as it was."""
    created = bystander.post("/api/v1/payments", {"amount": 4200, "currency": "EUR"})
    assert created.status_code == 201, created.text
    client = redis.Redis.from_url(stack.redis_url)
    try:
        assert not client.exists("cb:payments:open")
        assert int(client.get("cb:payments:failures") or 0) == 0
    finally:
        client.close()
