"""The public payments API against a real PostgreSQL database."""

import asyncio

import pytest
from payplane_core.ids import new_id

from tests.support.internal import READ_SCOPES
from tests.support.payments import client_for, count

PROBLEM = "application/problem+json"


async def create(client, **body):
    payload = {"amount": 1250, "currency": "EUR"} | body
    return await client.post("/api/v1/payments", json=payload)


async def test_create_show_and_tracking(client, merchant_id):
    response = await create(client, description="Order 42", metadata={"order": "42"})
    assert response.status_code == 201, response.text
    payment = response.json()
    assert payment["id"].startswith("pay_")
    assert payment | {"id": "", "created_at": "", "updated_at": ""} == {
        "id": "",
        "merchant_id": merchant_id,
        "amount": 1250,
        "currency": "EUR",
        "status": "pending",
        "provider": None,
        "description": "Order 42",
        "metadata": {"order": "42"},
        "created_at": "",
        "updated_at": "",
    }
    assert response.headers["location"] == f"/api/v1/payments/{payment['id']}/show"
    assert response.headers["x-request-id"]

    shown = await client.get(f"/api/v1/payments/{payment['id']}/show")
    assert shown.status_code == 200
    assert shown.json() == payment

    tracking = await client.get(f"/api/v1/payments/{payment['id']}/tracking")
    assert tracking.status_code == 200
    body = tracking.json()
    assert body["payment_id"] == payment["id"] and body["status"] == "pending"
    assert [(e["type"], e["status"], e["source"]) for e in body["events"]] == [
        ("payment.created", "pending", "api")
    ]


async def test_read_only_scope_can_read_but_not_write(app, client):
    payment = (await create(client)).json()
    async with client_for(app, merchant_id=payment["merchant_id"], scopes=READ_SCOPES) as reader:
        assert (await reader.get(f"/api/v1/payments/{payment['id']}/show")).status_code == 200
        denied = await create(reader)
    assert denied.status_code == 403
    assert denied.headers["content-type"] == PROBLEM


async def test_pagination_over_250_payments_has_no_gap_and_no_repeat(client):
    created = []
    for _ in range(5):
        responses = await asyncio.gather(*(create(client, amount=i + 1) for i in range(50)))
        assert all(r.status_code == 201 for r in responses)
        created += [r.json()["id"] for r in responses]

    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 100} | ({"starting_after": cursor} if cursor else {})
        page = (await client.get("/api/v1/payments", params=params)).json()
        pages += 1
        seen += [p["id"] for p in page["data"]]
        assert page["next_cursor"] == (page["data"][-1]["id"] if page["has_more"] else None)
        if not page["has_more"]:
            break
        cursor = page["next_cursor"]
    assert pages == 3
    assert len(seen) == len(set(seen)) == 250
    assert set(seen) == set(created)

    listed = (await client.get("/api/v1/payments")).json()["data"]
    assert len(listed) == 20  # default limit
    stamps = [(p["created_at"], p["id"]) for p in listed]
    assert stamps == sorted(stamps, reverse=True)  # newest first


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}, {"limit": "ten"}])
async def test_bad_page_size_is_a_problem(client, params):
    response = await client.get("/api/v1/payments", params=params)
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM


async def test_tenant_isolation(app, client):
    payment = (await create(client)).json()
    async with client_for(app, merchant_id=new_id("mer")) as other:
        for path in ("show", "tracking"):
            response = await other.get(f"/api/v1/payments/{payment['id']}/{path}")
            assert response.status_code == 404, path
            assert response.json()["type"].endswith("/payment-not-found")
        listing = await other.get("/api/v1/payments")
        assert listing.json() == {"data": [], "has_more": False, "next_cursor": None}
        cursor = await other.get("/api/v1/payments", params={"starting_after": payment["id"]})
        assert cursor.status_code == 404


async def test_unknown_payment_is_404(client):
    response = await client.get(f"/api/v1/payments/{new_id('pay')}/show")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert set(body) >= {"type", "title", "status", "detail", "request_id"}


BAD_BODIES = [
    ({"amount": 0, "currency": "EUR"}, 422),
    ({"amount": -100, "currency": "EUR"}, 422),
    ({"amount": 10.5, "currency": "EUR"}, 422),
    ({"amount": 100.0, "currency": "EUR"}, 422),
    ({"amount": "100", "currency": "EUR"}, 422),
    ({"amount": True, "currency": "EUR"}, 422),
    ({"amount": 10**15, "currency": "EUR"}, 422),
    ({"amount": 10**40, "currency": "EUR"}, 422),
    ({"amount": 100, "currency": "eur"}, 422),
    ({"amount": 100, "currency": "ABC"}, 422),
    ({"amount": 100, "currency": "EURO"}, 422),
    ({"amount": 100}, 422),
    ({"currency": "EUR"}, 422),
    ({"amount": 100, "currency": "EUR", "metadata": {f"k{i}": "v" for i in range(21)}}, 422),
    ({"amount": 100, "currency": "EUR", "metadata": {"k" * 41: "v"}}, 422),
    ({"amount": 100, "currency": "EUR", "metadata": {"k": "v" * 501}}, 422),
    ({"amount": 100, "currency": "EUR", "metadata": {"k": 1}}, 422),
    ({"amount": 100, "currency": "EUR", "metadata": {"k": {"nested": "x"}}}, 422),
    ({"amount": 100, "currency": "EUR", "description": "d" * 1001}, 422),
    ({"amount": 100, "currency": "EUR", "status": "succeeded"}, 422),
    ({"amount": 100, "currency": "EUR", "merchant_id": "mer_other"}, 422),
    ([{"amount": 100, "currency": "EUR"}], 422),
]


@pytest.mark.parametrize(("body", "status"), BAD_BODIES)
async def test_bad_bodies_answer_a_problem_and_write_nothing(client, db, merchant_id, body, status):
    response = await client.post("/api/v1/payments", json=body, headers={"Idempotency-Key": "k1"})
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["status"] == status
    assert "Traceback" not in response.text
    for table in ("payments", "outbox_events", "idempotency_keys"):
        assert await count(db, table, merchant_id) == 0


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b'{"amount": 100, "currency": "EUR"', "application/json", 400),
        (b"", "application/json", 422),
        (b"amount=100&currency=EUR", "application/x-www-form-urlencoded", 415),
        (b'{"amount": 100, "currency": "EUR"}', "text/plain", 415),
        (b'{"amount": 100, "currency": "EUR"}', None, 415),
        (
            b'{"amount": 100, "currency": "EUR", "description": "' + b"x" * 70_000 + b'"}',
            "application/json",
            413,
        ),
    ],
)
async def test_malformed_requests(client, db, merchant_id, content, content_type, status):
    headers = {"content-type": content_type} if content_type else {}
    response = await client.post("/api/v1/payments", content=content, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    assert await count(db, "payments", merchant_id) == 0


async def test_health_ready_metrics_need_no_signature(app):
    async with client_for(app) as anonymous:
        assert (await anonymous.get("/health")).json()["status"] == "ok"
        assert (await anonymous.get("/ready")).json()["status"] == "ready"
        metrics = await anonymous.get("/metrics")
        assert "payplane_http_requests_total" in metrics.text
