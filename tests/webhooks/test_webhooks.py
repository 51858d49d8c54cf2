"""Provider webhooks: verified on the raw bytes, every one audited, duplicates harmless, outcome
handed to the real payments service."""

import json
import time
from datetime import UTC, datetime

import httpx
import pytest
from standardwebhooks import Webhook

from .conftest import PROVIDER, PROVIDER_SECRET

HOOK = "/api/v1/payments/webhook"


def event(payment_id: str, status: str = "succeeded", **data) -> dict:
    """An outcome as the provider sends it (for the 1200 EUR of ``processing_payment``)."""
    return {
        "type": f"charge.{status}",
        "timestamp": datetime.now(UTC).isoformat(),
        "data": {
            "id": "ch_1",
            "payment_id": payment_id,
            "status": status,
            "provider": PROVIDER,
            "amount": 1200,
            "currency": "EUR",
        }
        | data,
    }


def signed(
    body: dict | bytes,
    *,
    msg_id: str | None = None,
    secret: str = PROVIDER_SECRET,
    at: float | None = None,
    provider: str | None = PROVIDER,
) -> tuple[bytes, dict]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    msg_id = msg_id or f"msg_{time.time_ns()}"
    when = datetime.fromtimestamp(at if at is not None else time.time(), tz=UTC)
    headers = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, when, raw.decode()),
    }
    if provider is not None:
        headers["webhook-provider"] = provider
    return raw, headers


async def processing_payment(payments, provider: str = PROVIDER) -> str:
    merchant, internal = payments
    created = await merchant.post("/api/v1/payments", json={"amount": 1200, "currency": "EUR"})
    assert created.status_code == 201, created.text
    payment_id = created.json()["id"]
    moved = await internal.post(
        f"/internal/v1/payments/{payment_id}/events",
        json={
            "type": "provider.accepted",
            "status": "processing",
            "source": "providers",
            "provider": provider,
        },
    )
    assert moved.status_code == 200, moved.text
    return payment_id


async def tracking(payments, payment_id: str) -> dict:
    response = await payments[0].get(f"/api/v1/payments/{payment_id}/tracking")
    return response.json()


async def logs(operator, **filters) -> list[dict]:
    response = await operator.get("/internal/v1/webhook-logs", params=filters | {"limit": 100})
    assert response.status_code == 200, response.text
    return response.json()["data"]


async def test_verified_outcome_reaches_payments(ingress, operator, payments):
    payment_id = await processing_payment(payments)
    raw, headers = signed(event(payment_id))
    response = await ingress.post(HOOK, content=raw, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["duplicate"] is False
    story = await tracking(payments, payment_id)
    assert story["status"] == "succeeded"
    last = story["events"][-1]
    assert (last["type"], last["source"], last["detail"]["webhook_id"]) == (
        "provider.webhook",
        "webhooks",
        headers["webhook-id"],
    )
    [row] = await logs(operator, payment_id=payment_id)
    assert (row["verdict"], row["handoff"], row["provider"]) == ("accepted", "done", PROVIDER)
    assert row["request_id"] == "req-test"


async def test_declined_outcome_fails_the_payment(ingress, payments):
    payment_id = await processing_payment(payments)
    raw, headers = signed(event(payment_id, "failed", failure_reason="card_declined"))
    assert (await ingress.post(HOOK, content=raw, headers=headers)).status_code == 200
    story = await tracking(payments, payment_id)
    assert story["status"] == "failed"
    assert story["events"][-1]["detail"]["failure_reason"] == "card_declined"


async def test_duplicate_changes_nothing(ingress, operator, payments):
    payment_id = await processing_payment(payments)
    body = event(payment_id)
    raw, headers = signed(body, msg_id="msg_dup_" + payment_id)
    assert (await ingress.post(HOOK, content=raw, headers=headers)).status_code == 200
    before = await tracking(payments, payment_id)
    # The provider's redelivery: same id, signed afresh a second later.
    raw2, headers2 = signed(body, msg_id="msg_dup_" + payment_id, at=time.time() + 1)
    again = await ingress.post(HOOK, content=raw2, headers=headers2)
    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    assert await tracking(payments, payment_id) == before
    rows = await logs(operator, payment_id=payment_id)
    assert sorted(r["verdict"] for r in rows) == ["accepted", "duplicate"]


async def test_exact_replay_is_refused_and_audited(ingress, operator, payments):
    payment_id = await processing_payment(payments)
    raw, headers = signed(event(payment_id))
    assert (await ingress.post(HOOK, content=raw, headers=headers)).status_code == 200
    replay = await ingress.post(HOOK, content=raw, headers=headers)
    assert replay.status_code == 403
    assert replay.json()["reason"] == "replayed"
    rejected = await logs(operator, webhook_id=headers["webhook-id"], verdict="rejected")
    assert [r["reason"] for r in rejected] == ["replayed"]


def forgeries(payment_id: str) -> dict[str, tuple[bytes, dict]]:
    body = event(payment_id)
    raw, good = signed(body)
    unsigned = {k: v for k, v in good.items() if not k.startswith("webhook-")}
    return {
        "unsigned": (raw, unsigned),
        "no-signature": (raw, {k: v for k, v in good.items() if k != "webhook-signature"}),
        "other-secret": signed(body, secret="whsec_" + "b3RoZXItc2VjcmV0LW9mLXNpeHRlZW4="),
        "tampered-body": (raw.replace(b"succeeded", b"failed"), good),
        "stale": signed(body, at=time.time() - 600),
        "future": signed(body, at=time.time() + 600),
        "unknown-provider": signed(body, provider="sim-nobody"),
        "garbage-signature": (raw, good | {"webhook-signature": "v1,!!!notbase64"}),
        "no-comma-signature": (raw, good | {"webhook-signature": "nonsense"}),
        "bad-timestamp": (raw, good | {"webhook-timestamp": "yesterday"}),
        "not-utf8": (b"\xff\xfe{}", good),
    }


EXPECTED_REASON = {
    "unsigned": "unsigned",
    "no-signature": "unsigned",
    "other-secret": "bad-signature",
    "tampered-body": "bad-signature",
    "stale": "stale",
    "future": "stale",
    "unknown-provider": "unknown-provider",
    "garbage-signature": "bad-signature",
    "no-comma-signature": "bad-signature",
    "bad-timestamp": "malformed-headers",
    "not-utf8": "bad-signature",
}


@pytest.mark.parametrize("kind", list(EXPECTED_REASON))
async def test_forged_requests_get_403_and_are_audited(kind, ingress, operator, payments):
    payment_id = await processing_payment(payments)
    raw, headers = forgeries(payment_id)[kind]
    response = await ingress.post(HOOK, content=raw, headers=headers)
    assert response.status_code == 403, response.text
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert problem["reason"] == EXPECTED_REASON[kind]
    row = (await operator.get(f"/internal/v1/webhook-logs/{problem['log_id']}")).json()
    assert (row["verdict"], row["reason"], row["handoff"]) == (
        "rejected",
        problem["reason"],
        "none",
    )
    assert (await tracking(payments, payment_id))["status"] == "processing"


async def test_signature_without_provider_header_tries_known_providers(ingress, payments):
    payment_id = await processing_payment(payments)
    raw, headers = signed(event(payment_id), provider=None)
    assert (await ingress.post(HOOK, content=raw, headers=headers)).status_code == 200


async def test_outcome_from_a_provider_not_holding_the_payment_is_refused(
    ingress, operator, payments
):
    """Correctly signed by a registered provider, but another provider holds the payment: 409,
    every delivery audited as rejected, nothing applied, even once the payment is final."""
    payment_id = await processing_payment(payments, provider="sim-holder")
    before = await tracking(payments, payment_id)
    body = event(payment_id, "failed", failure_reason="card_declined")
    for attempt in range(2):  # the provider's retry is refused again, and audited again
        raw, headers = signed(body, msg_id="msg_wrong_" + payment_id, at=time.time() + attempt)
        answer = await ingress.post(HOOK, content=raw, headers=headers)
        assert answer.status_code == 409, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["reason"] == "wrong-provider"
    assert await tracking(payments, payment_id) == before
    rows = await logs(operator, payment_id=payment_id)
    assert [(r["verdict"], r["reason"]) for r in rows] == [("rejected", "wrong-provider")] * 2
    # A final payment too: the other provider's "succeeded" is refused, not a silent no-op.
    finished = await payments[1].post(
        f"/internal/v1/payments/{payment_id}/events",
        json={"type": "x.done", "status": "succeeded", "source": "providers"},
    )
    assert finished.status_code == 200, finished.text
    raw, headers = signed(event(payment_id), msg_id="msg_wrong2_" + payment_id)
    assert (await ingress.post(HOOK, content=raw, headers=headers)).status_code == 409


@pytest.mark.parametrize("claim", [{"amount": 1199}, {"currency": "USD"}])
async def test_outcome_for_another_amount_or_currency_is_refused(
    claim, ingress, operator, payments
):
    payment_id = await processing_payment(payments)
    raw, headers = signed(event(payment_id, **claim))
    answer = await ingress.post(HOOK, content=raw, headers=headers)
    assert answer.status_code == 409, answer.text
    assert answer.json()["reason"] == "charge-mismatch"
    assert (await tracking(payments, payment_id))["status"] == "processing"
    [row] = await logs(operator, payment_id=payment_id)
    assert (row["verdict"], row["reason"]) == ("rejected", "charge-mismatch")


@pytest.mark.parametrize(
    "claim", [{"amount": None}, {"amount": "1200"}, {"amount": True}, {"currency": "eur"}]
)
async def test_outcome_not_stating_its_charge_is_400(claim, ingress, payments):
    payment_id = await processing_payment(payments)
    raw, headers = signed(event(payment_id, **claim))
    answer = await ingress.post(HOOK, content=raw, headers=headers)
    assert (answer.status_code, answer.json()["reason"]) == (400, "malformed-body")


async def test_signed_but_malformed_body_is_400(ingress, operator):
    raw, headers = signed(b'{"type": "charge.succeeded"}')
    response = await ingress.post(HOOK, content=raw, headers=headers)
    assert response.status_code == 400
    assert response.json()["reason"] == "malformed-body"


async def test_outcome_before_processing_asks_provider_to_retry(ingress, operator, payments):
    merchant, internal = payments
    payment_id = (
        await merchant.post("/api/v1/payments", json={"amount": 900, "currency": "EUR"})
    ).json()["id"]
    body = event(payment_id, amount=900)
    raw, headers = signed(body, msg_id="msg_early_" + payment_id)
    early = await ingress.post(HOOK, content=raw, headers=headers)
    assert early.status_code == 503
    assert early.headers["retry-after"] == "1"
    await internal.post(
        f"/internal/v1/payments/{payment_id}/events",
        json={"type": "provider.accepted", "status": "processing", "source": "providers"},
    )
    raw, headers = signed(body, msg_id="msg_early_" + payment_id, at=time.time() + 1)
    retried = await ingress.post(HOOK, content=raw, headers=headers)
    assert retried.status_code == 200
    assert (await tracking(payments, payment_id))["status"] == "succeeded"
    [accepted] = await logs(operator, payment_id=payment_id, verdict="accepted")
    assert accepted["handoff"] == "done"


async def test_unknown_payment_is_kept_not_retried(ingress, operator):
    raw, headers = signed(event("pay_doesnotexist"))
    assert (await ingress.post(HOOK, content=raw, headers=headers)).status_code == 200
    [row] = await logs(operator, payment_id="pay_doesnotexist")
    assert row["handoff"] == "unknown_payment"


async def test_credentials_are_never_stored(ingress, operator, payments):
    payment_id = await processing_payment(payments)
    raw, headers = signed(event(payment_id))
    headers |= {"authorization": "Bearer sk_live_secret", "cookie": "session=abc"}
    await ingress.post(HOOK, content=raw, headers=headers)
    [row] = await logs(operator, payment_id=payment_id)
    stored = json.dumps(row)
    for secret in ("sk_live_secret", "session=abc", PROVIDER_SECRET):
        assert secret not in stored
    assert row["headers"]["x-payplane-signature"] == "[redacted]"
    assert row["headers"]["authorization"] == "[redacted]"


async def test_direct_access_without_gateway_signature_is_refused(app):
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://webhooks.test"
    ) as anonymous:
        raw, headers = signed(event("pay_x"))
        response = await anonymous.post(HOOK, content=raw, headers=headers)
    assert response.status_code == 401


async def test_audit_api_filters_and_paginates(ingress, operator, payments):
    payment_id = await processing_payment(payments)
    since = datetime.now(UTC).isoformat()
    for _ in range(3):  # three forgeries: rejected rows keep only what the request claimed
        raw, headers = signed(event(payment_id), secret="whsec_" + "ZmFrZS1mYWtlLWZha2UtZmFrZQ==")
        await ingress.post(HOOK, content=raw, headers=headers)
    query = {"since": since, "verdict": "rejected", "provider": PROVIDER, "limit": 2}
    page = (await operator.get("/internal/v1/webhook-logs", params=query)).json()
    assert (len(page["data"]), page["has_more"]) == (2, True)
    second = (
        await operator.get(
            "/internal/v1/webhook-logs", params=query | {"starting_after": page["next_cursor"]}
        )
    ).json()
    assert (len(second["data"]), second["has_more"]) == (1, False)
    ids = [r["id"] for r in page["data"] + second["data"]]
    assert len(set(ids)) == 3
    stamps = [r["received_at"] for r in page["data"] + second["data"]]
    assert stamps == sorted(stamps, reverse=True)
    assert all(r["reason"] == "bad-signature" for r in page["data"])
    assert (
        await operator.get("/internal/v1/webhook-logs", params={"verdict": "bogus"})
    ).status_code == 422
    assert (
        await operator.get("/internal/v1/webhook-logs", params={"starting_after": "whl_nope"})
    ).status_code == 404
    assert (await operator.get("/internal/v1/webhook-logs/whl_nope")).status_code == 404


async def test_audit_api_is_not_for_the_gateway(ingress):
    response = await ingress.get("/internal/v1/webhook-logs")
    assert response.status_code == 403
