"""Calls to a provider's charge API, classified by what they prove about the money.

The provider contract (the simulator's, and the usual one): ``POST /v1/charges`` is idempotent
on the payment id; 2xx means accepted and charged; any other answer means nothing was charged;
``POST /v1/charges/{payment_id}/cancel`` stops a charge that is not yet accepted (and blocks it
from ever being accepted), or answers 409 when it already was.

A time-out is the ambiguous case: the provider may have accepted the charge after we stopped
waiting. We never fail over on ambiguity alone: we cancel at that provider first, and only a
confirmed cancel lets the next provider charge. A confirmed "already charged" means the payment
stays with this provider. If the cancel cannot be confirmed either, the payment waits (its
message returns to the queue) and the same provider is asked again later.
"""

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx


class Result(StrEnum):
    ACCEPTED = "accepted"  # charged: the payment belongs to this provider now
    NOT_SENT = "not_sent"  # connection refused or failed to connect: certainly not charged
    REFUSED = "refused"  # the provider answered non-2xx: not charged
    AMBIGUOUS = "ambiguous"  # sent, no answer in time: maybe charged


class Resolution(StrEnum):
    NOT_CHARGED = "not_charged"
    CHARGED = "charged"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class CallOutcome:
    result: Result
    http_status: int | None = None
    charge: dict[str, Any] | None = None
    error: str | None = None

    @property
    def counts_against_provider(self) -> bool:
        """Breaker failure: the provider is unreachable, slow or erroring (5xx), not our 4xx."""
        if self.result in (Result.NOT_SENT, Result.AMBIGUOUS):
            return True
        return self.result is Result.REFUSED and (self.http_status or 0) >= 500


def _charge_body(payment: dict[str, Any]) -> dict[str, Any]:
    return {
        "payment_id": payment["id"],
        "amount": payment["amount"],
        "currency": payment["currency"],
        "description": payment.get("description"),
        "metadata": payment.get("metadata") or {},
    }


async def charge(
    http: httpx.AsyncClient,
    *,
    endpoint: str,
    api_key: str,
    payment: dict[str, Any],
    timeout_seconds: float,
) -> CallOutcome:
    try:
        response = await http.post(
            f"{endpoint}/v1/charges",
            json=_charge_body(payment),
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout_seconds,
        )
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        return CallOutcome(Result.NOT_SENT, error=type(exc).__name__)
    except httpx.TransportError as exc:  # read time-out, connection dropped mid-answer
        return CallOutcome(Result.AMBIGUOUS, error=type(exc).__name__)
    if response.is_success:
        return CallOutcome(Result.ACCEPTED, response.status_code, charge=_json(response))
    body = _json(response)
    if response.status_code == 409 and body.get("charge_status") == "received":
        # An earlier request for this payment is still in flight there: as ambiguous as a
        # time-out, and resolved the same way.
        return CallOutcome(Result.AMBIGUOUS, response.status_code, error="in_flight")
    return CallOutcome(
        Result.REFUSED, response.status_code, error=str(body.get("type") or response.reason_phrase)
    )


async def cancel(
    http: httpx.AsyncClient,
    *,
    endpoint: str,
    api_key: str,
    payment_id: str,
    timeout_seconds: float,
) -> tuple[Resolution, dict[str, Any] | None]:
    try:
        response = await http.post(
            f"{endpoint}/v1/charges/{payment_id}/cancel",
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout_seconds,
        )
    except httpx.TransportError:
        return Resolution.UNKNOWN, None
    body = _json(response)
    if response.is_success:
        return Resolution.NOT_CHARGED, body
    if response.status_code == 409:
        return Resolution.CHARGED, body.get("charge")
    return Resolution.UNKNOWN, None


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class ChargeStatusUnavailable(Exception):
    """The provider could not tell us (unreachable, time-out, 5xx): ask again later."""


async def charge_status(
    http: httpx.AsyncClient,
    *,
    endpoint: str,
    api_key: str,
    payment_id: str,
    timeout_seconds: float,
) -> dict[str, Any] | None:
    """The provider's own record of this payment's charge (``GET /v1/charges/{payment_id}``,
    the status API real providers offer for reconciliation); None when it has none."""
    try:
        response = await http.get(
            f"{endpoint}/v1/charges/{payment_id}",
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout_seconds,
        )
    except httpx.TransportError as exc:
        raise ChargeStatusUnavailable(type(exc).__name__) from None
    if response.status_code == 404:
        return None
    if not response.is_success:
        raise ChargeStatusUnavailable(f"answered {response.status_code}")
    return _json(response)
