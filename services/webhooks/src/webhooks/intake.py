"""What happens to one provider webhook: verify, record, deduplicate, hand off to payments.

Every request leaves exactly one row in ``webhook_logs``: accepted, rejected (with its reason)
or duplicate. A duplicate (same provider and webhook-id, newly signed) changes nothing; an
exact replay of a message already handled (same id and timestamp) is refused as a replay.
"""

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from payplane_core.db import Statement, driver_connection
from payplane_core.ids import new_id
from payplane_core.text import storable
from prometheus_client import Counter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from webhooks import verify as verification
from webhooks.models import WebhookLog

log = logging.getLogger(__name__)

RECEIVED = Counter(
    "payplane_provider_webhooks_total",
    "Provider webhooks by verdict and reason",
    ["verdict", "reason"],
)

# Headers never stored: credentials of any kind (the gateway's internal signature included).
REDACTED = frozenset(
    {"authorization", "proxy-authorization", "cookie", "x-api-key", "x-payplane-signature"}
)
# Payments' refusals (problem type = audit reason): never applied, never worth retrying.
REFUSALS = frozenset({"wrong-provider", "charge-mismatch"})
FINISHED = frozenset({"done", "conflict", "unknown_payment"})
MAX_STORED_BODY = 64 * 1024  # the ingress refuses larger bodies anyway


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    reason: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


def safe_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """What is kept of the headers: credentials redacted, every value cut and storable (a
    repeated header is kept joined, as it was refused for)."""
    getlist = getattr(headers, "getlist", None)
    kept: dict[str, str] = {}
    for name in dict.fromkeys(k.lower() for k in headers.keys()):
        values = getlist(name) if getlist is not None else [headers[name]]
        value = "[redacted]" if name in REDACTED else storable(", ".join(values), 1000)
        kept[storable(name, 100)] = value
    return kept


def _clip(value: Any, limit: int) -> str | None:
    """An untrusted string made storable in a column of ``limit`` characters."""
    return storable(value, limit) if isinstance(value, str) and value else None


def _row(
    *,
    headers: Mapping[str, str],
    raw: bytes,
    request_id: str,
    verdict: str,
    reason: str | None = None,
    verified: verification.Verified | None = None,
) -> dict:
    event = verified.event if verified else {}
    # Everything stored is cut to its column and made storable: a rejected request is audited
    # whatever it carried (no NUL, no oversized header can turn the audit row into a 500).
    timestamp = verified.timestamp if verified else verification.claimed_timestamp(headers)
    return dict(
        id=new_id("whl"),
        received_at=datetime.now(UTC),
        request_id=request_id[:128],
        provider=_clip(
            verified.provider if verified else headers.get(verification.PROVIDER_HEADER), 63
        ),
        webhook_id=_clip(verified.webhook_id if verified else headers.get("webhook-id"), 255),
        webhook_timestamp=timestamp if timestamp is None or abs(timestamp) < 2**62 else None,
        verdict=verdict,
        reason=reason,
        event_type=_clip(event.get("type"), 64),
        payment_id=_clip((event.get("data") or {}).get("payment_id"), 64),
        headers=json.dumps(safe_headers(headers)),
        body=storable(raw[:MAX_STORED_BODY].decode("utf-8", errors="replace"), MAX_STORED_BODY),
        handoff="pending" if verdict == "accepted" else "none",
    )


# Each write is one statement, built once and sent on the pooled connection's asyncpg
# connection outside any transaction (``payplane_core.db.Statement``: no BEGIN/COMMIT round
# trips, no SQLAlchemy execution layer): atomic on its own, as the transaction around it was.
_COLUMNS = tuple(
    column.name for column in WebhookLog.__table__.columns if column.name != "handoff_detail"
)
_VALUES = ", ".join(
    "CAST(:headers AS jsonb)" if name == "headers" else f":{name}" for name in _COLUMNS
)
_INSERT_SQL = f"INSERT INTO webhook_logs ({', '.join(_COLUMNS)}) VALUES ({_VALUES})"  # noqa: S608
_INSERT = Statement(_INSERT_SQL)
_INSERT_ACCEPTED = Statement(
    f"{_INSERT_SQL} ON CONFLICT (provider, webhook_id) WHERE verdict = 'accepted' DO NOTHING"
    " RETURNING id"
)
_MARK = Statement(
    "UPDATE webhook_logs SET handoff = :new_handoff, handoff_detail = :new_detail"
    " WHERE id = :log_id"
)
_REFUSE = Statement(
    "UPDATE webhook_logs SET verdict = 'rejected', reason = :new_reason, handoff = 'none',"
    " handoff_detail = :new_detail WHERE id = :log_id"
)


def _engine(sessions: async_sessionmaker) -> AsyncEngine:
    return sessions.kw["bind"]


async def _write(sessions: async_sessionmaker, statement: Statement, params: dict) -> Any:
    """The statement's one value if it returns rows (RETURNING), else None."""
    async with driver_connection(_engine(sessions)) as conn:
        return await statement.fetchval(conn, params)


async def _insert(sessions: async_sessionmaker, values: dict) -> None:
    await _write(sessions, _INSERT, values)


async def receive(
    *,
    sessions: async_sessionmaker,
    secrets: Mapping[str, str],
    payments: httpx.AsyncClient,
    raw: bytes,
    headers: Mapping[str, str],
    request_id: str,
    tolerance_seconds: int,
) -> Answer:
    try:
        verified = verification.verify(
            raw, headers, secrets=secrets, tolerance_seconds=tolerance_seconds
        )
    except verification.Rejected as exc:
        return await _reject(sessions, headers, raw, request_id, exc.reason, exc.detail)

    values = _row(
        headers=headers, raw=raw, request_id=request_id, verdict="accepted", verified=verified
    )
    inserted = await _write(sessions, _INSERT_ACCEPTED, values)
    if inserted is not None:
        RECEIVED.labels("accepted", "").inc()
        return await _hand_off(sessions, payments, inserted, verified)

    async with sessions() as session:
        original = await session.scalar(
            select(WebhookLog).where(
                WebhookLog.provider == verified.provider,
                WebhookLog.webhook_id == verified.webhook_id,
                WebhookLog.verdict == "accepted",
            )
        )
    if original.webhook_timestamp == verified.timestamp and original.handoff in FINISHED:
        return await _reject(
            sessions,
            headers,
            raw,
            request_id,
            "replayed",
            f"This exact message was already received as {original.id}.",
        )
    values |= {"verdict": "duplicate", "reason": f"duplicate-of:{original.id}", "handoff": "none"}
    await _insert(sessions, values)
    RECEIVED.labels("duplicate", "").inc()
    if original.handoff in FINISHED:
        return Answer(200, {"received": True, "duplicate": True, "log_id": values["id"]})
    # The first delivery never reached payments: this redelivery finishes the job.
    return await _hand_off(sessions, payments, original.id, verified)


async def _reject(sessions, headers, raw, request_id, reason, detail) -> Answer:
    values = _row(
        headers=headers, raw=raw, request_id=request_id, verdict="rejected", reason=reason
    )
    await _insert(sessions, values)
    RECEIVED.labels("rejected", reason).inc()
    status = 400 if reason == "malformed-body" else 403
    return Answer(status, {"log_id": values["id"], "detail": detail}, reason=reason)


async def _hand_off(
    sessions: async_sessionmaker,
    payments: httpx.AsyncClient,
    log_id: str,
    verified: verification.Verified,
) -> Answer:
    """Report the outcome to payments (a repeated status is a no-op there)."""
    event, data = verified.event, verified.event["data"]
    body = {
        "type": "provider.webhook",
        "source": "webhooks",
        "provider": verified.provider,
        "detail": {
            "provider": verified.provider,
            "webhook_id": verified.webhook_id,
            "event_type": event["type"],
            "charge_id": data.get("id"),
            "failure_reason": data.get("failure_reason"),
            "log_id": log_id,
        },
    }
    if status := verification.STATUS_OF.get(event["type"]):
        # payments compares the charge with the payment and refuses a mismatch.
        body |= {"status": status, "amount": data["amount"], "currency": data["currency"]}
    try:
        response = await payments.post(
            f"/internal/v1/payments/{data['payment_id']}/events", json=body
        )
    except httpx.HTTPError as exc:
        await _mark(sessions, log_id, "pending", f"payments unreachable: {type(exc).__name__}")
        return _retry_later(log_id, "payments is unreachable")
    problem = _json(response)
    if response.is_success:
        await _mark(sessions, log_id, "done", None)
        return Answer(200, {"received": True, "duplicate": False, "log_id": log_id})
    refusal = str(problem.get("type", "")).rsplit("/", 1)[-1]
    if response.status_code == 409 and refusal in REFUSALS:
        return await _refuse(sessions, log_id, refusal, str(problem.get("detail", "")))
    if response.status_code == 409 and problem.get("current") == "pending":
        # The provider answered faster than our own record of its acceptance: ask it to
        # resend in a moment (Standard Webhooks senders retry non-2xx answers).
        await _mark(sessions, log_id, "pending", "payment still pending")
        return _retry_later(log_id, "the payment has not reached processing yet")
    if response.status_code in (409, 422):  # retrying cannot help: keep it for an operator
        await _mark(sessions, log_id, "conflict", response.text[:1000])
        log.error(
            "provider outcome conflicts with the payment",
            extra={"log_id": log_id, "answer": response.text[:300]},
        )
        return Answer(200, {"received": True, "duplicate": False, "log_id": log_id})
    if response.status_code == 404:
        await _mark(sessions, log_id, "unknown_payment", None)
        return Answer(200, {"received": True, "duplicate": False, "log_id": log_id})
    await _mark(sessions, log_id, "pending", f"payments answered {response.status_code}")
    return _retry_later(log_id, f"payments answered {response.status_code}")


async def _refuse(sessions: async_sessionmaker, log_id: str, reason: str, detail: str) -> Answer:
    """A verified callback payments will not apply (another provider holds the payment, or the
    charge is not the payment's): its row turns into a rejection with that reason, so every
    such delivery stays on record, and the provider gets a problem saying why."""
    params = {"log_id": log_id, "new_reason": reason, "new_detail": storable(detail, 1000)}
    await _write(sessions, _REFUSE, params)
    RECEIVED.labels("rejected", reason).inc()
    log.error("provider callback refused", extra={"log_id": log_id, "reason": reason})
    return Answer(409, {"log_id": log_id, "detail": detail}, reason=reason)


def _retry_later(log_id: str, detail: str) -> Answer:
    return Answer(
        503,
        {"log_id": log_id, "detail": detail},
        reason="retry-later",
        headers={"Retry-After": "1"},
    )


async def _mark(
    sessions: async_sessionmaker, log_id: str, handoff: str, detail: str | None
) -> None:
    params = {"log_id": log_id, "new_handoff": handoff, "new_detail": detail}
    await _write(sessions, _MARK, params)


def _json(response: httpx.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
