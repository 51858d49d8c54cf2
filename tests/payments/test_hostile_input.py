"""Input PostgreSQL cannot store is a 4xx problem before it gets there, never a 500."""

import json

import pytest

from tests.support.payments import count

PROBLEM = "application/problem+json"
NUL, SURROGATE = "x\\u0000y", "x\\ud800y"  # as JSON escapes, exactly as a client sends them


async def post_raw(client, raw: str, **headers):
    return await client.post(
        "/api/v1/payments",
        content=raw.encode(),
        headers={"content-type": "application/json"} | headers,
    )


@pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["nul", "surrogate"])
@pytest.mark.parametrize(
    "template",
    [
        '{"amount": 100, "currency": "EUR", "description": "%s"}',
        '{"amount": 100, "currency": "EUR", "metadata": {"k": "%s"}}',
        '{"amount": 100, "currency": "EUR", "metadata": {"%s": "v"}}',
        '{"amount": 100, "currency": "%s"}',
    ],
    ids=["description", "metadata-value", "metadata-key", "currency"],
)
async def test_nul_and_lone_surrogates_are_422(client, db, merchant_id, template, bad):
    response = await post_raw(client, template % bad)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"].endswith("/validation-error")
    assert await count(db, "payments", merchant_id) == 0


async def test_query_and_path_ids_refuse_nul(client):
    listed = await client.get("/api/v1/payments", params={"starting_after": "pay_\x00"})
    assert listed.status_code == 422 and listed.headers["content-type"] == PROBLEM
    for suffix in ("show", "tracking"):
        shown = await client.get(f"/api/v1/payments/pay_%00x/{suffix}")
        assert shown.status_code == 422, shown.text
    # A clean id that is not this merchant's is still a plain 404.
    assert (await client.get("/api/v1/payments/pay_unknown/show")).status_code == 404


async def test_duplicated_json_fields_are_400(client, db, merchant_id):
    response = await post_raw(client, '{"amount": 100, "currency": "EUR", "amount": 999}')
    assert response.status_code == 400
    assert response.json()["type"].endswith("/duplicate-json-field")
    nested = await post_raw(
        client, '{"amount": 100, "currency": "EUR", "metadata": {"a": "1", "a": "2"}}'
    )
    assert nested.status_code == 400
    assert await count(db, "payments", merchant_id) == 0


async def test_invalid_utf8_and_oversized_fields_are_4xx(client, db, merchant_id):
    invalid = await client.post(
        "/api/v1/payments",
        content=b'{"amount": 100, "currency": "EUR", "description": "\xff\xfe"}',
        headers={"content-type": "application/json"},
    )
    assert invalid.status_code == 400 and invalid.headers["content-type"] == PROBLEM
    huge = await post_raw(
        client, json.dumps({"amount": 1, "currency": "EUR", "description": "x" * 10_000})
    )
    assert huge.status_code == 422
    assert await count(db, "payments", merchant_id) == 0


async def test_duplicated_single_valued_headers_are_400(client, db, merchant_id):
    response = await client.post(
        "/api/v1/payments",
        content=b'{"amount": 100, "currency": "EUR"}',
        headers=[
            ("content-type", "application/json"),
            ("idempotency-key", "one"),
            ("idempotency-key", "two"),
        ],
    )
    assert response.status_code == 400, response.text
    assert response.json()["type"].endswith("/duplicate-header")
    assert await count(db, "payments", merchant_id) == 0


async def test_problem_bodies_survive_echoing_a_lone_surrogate(client):
    """The rejected metadata key appears in the error location; rendering must not break."""
    response = await post_raw(
        client, '{"amount": 100, "currency": "EUR", "metadata": {"\\ud800%s": "v"}}' % ("k" * 60)
    )
    assert response.status_code == 422
    body = response.json()
    assert all(len(part) <= 64 for error in body["errors"] for part in error["loc"])
