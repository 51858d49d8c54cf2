"""Calls to a provider's charge API (the I/O; ``providers.policy`` classifies the answers).

The provider contract (the simulator's, and the usual one): ``POST /v1/charges`` is idempotent
on the payment id; 2xx means accepted and charged; a 4xx means refused, nothing charged; a 5xx
or no answer means nothing is known; ``POST /v1/charges/{payment_id}/cancel`` stops a charge
that is not yet accepted (and blocks it from ever being accepted), or answers 409 when it
already was. Failing to connect at all is the one transport error that proves nothing was sent.
"""

from typing import Any

import httpx

from providers.policy import (
    CallOutcome,
    Resolution,
    Result,
    classify_cancel,
    classify_charge,
)


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
    return classify_charge(response.status_code, _json(response))


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
    return classify_cancel(response.status_code, _json(response))


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
