"""The unauthenticated provider route: whatever arrives is refused with a 4xx AND audited."""

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from .test_webhooks import HOOK, event, signed


async def audit_rows(logs_url, request_id: str) -> list:
    engine = create_async_engine(logs_url)
    try:
        async with engine.connect() as conn:
            result = await conn.execute(
                text(
                    "SELECT verdict, reason, provider, webhook_id, body FROM webhook_logs "
                    "WHERE request_id = :r"
                ),
                {"r": request_id},
            )
            return list(result)
    finally:
        await engine.dispose()


async def send(ingress, raw: bytes, headers, request_id: str):
    if isinstance(headers, dict):
        headers = list(headers.items())
    return await ingress.post(HOOK, content=raw, headers=[*headers, ("x-request-id", request_id)])


@pytest.mark.parametrize(
    "name", ["webhook-id", "webhook-signature", "webhook-timestamp", "webhook-provider"]
)
async def test_a_duplicated_signature_header_is_refused_and_audited(ingress, logs_url, name):
    raw, headers = signed(event("pay_dup"))
    pairs = [*headers.items(), (name, headers[name] if name != "webhook-id" else "msg_other")]
    request_id = f"dup-{name}"
    response = await send(ingress, raw, pairs, request_id)
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["reason"] == "duplicate-header"
    [(verdict, reason, *_)] = await audit_rows(logs_url, request_id)
    assert (verdict, reason) == ("rejected", "duplicate-header")


async def test_oversized_provider_and_id_are_audited_truncated(ingress, logs_url):
    raw, headers = signed(event("pay_long"), msg_id="m" * 5000)
    headers["webhook-provider"] = "p" * 5000
    response = await send(ingress, raw, headers, "long-headers")
    assert response.status_code == 403, response.text
    [(verdict, reason, provider, webhook_id, _)] = await audit_rows(logs_url, "long-headers")
    assert (verdict, reason) == ("rejected", "malformed-headers")
    assert provider == "p" * 63 and webhook_id == "m" * 255


async def test_nul_in_the_body_is_a_400_with_an_audit_row(ingress, logs_url):
    raw, headers = signed(b'{"type": "charge.succeeded", "data": {"payment_id": "p\x00"}}')
    response = await send(ingress, raw, headers, "nul-raw")
    assert response.status_code == 400, response.text
    [(verdict, reason, *_, body)] = await audit_rows(logs_url, "nul-raw")
    assert (verdict, reason) == ("rejected", "malformed-body") and "\x00" not in body


async def test_signed_nul_escapes_and_surrogates_in_fields_are_refused(ingress, logs_url):
    for n, bad in enumerate(["pay_\\u0000", "pay_\\ud800", "../../x"]):
        raw = ('{"type": "charge.succeeded", "data": {"payment_id": "' + bad + '"}}').encode()
        raw, headers = signed(raw)
        response = await send(ingress, raw, headers, f"nul-escape-{n}")
        assert response.status_code == 400, response.text
        [(verdict, reason, *_)] = await audit_rows(logs_url, f"nul-escape-{n}")
        assert (verdict, reason) == ("rejected", "malformed-body")
