"""Internal API for the payments service's reconciler (the safety net for lost events and
callbacks): route a payment nobody routed, and ask a payment's provider for its charge status."""

from typing import Any

from fastapi import APIRouter
from payplane_core.app import Internal
from payplane_core.problems import Problem
from pydantic import BaseModel, ConfigDict, Field

from providers import provider_client, registry
from providers.api.deps import Flow, Sessions
from providers.flow import RetryLater, route_payment
from providers.platform import PaymentUnknown, Unavailable

router = APIRouter(prefix="/internal/v1/payments", tags=["reconciliation"])

RECONCILERS = frozenset({"payments"})


class PaymentToRoute(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=40)
    merchant_id: str = Field(min_length=1, max_length=64)
    amount: int = Field(gt=0)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    status: str
    description: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


def _only_reconcilers(identity) -> None:
    if identity.caller not in RECONCILERS:
        raise Problem(403, "not-allowed", f"Caller {identity.caller} may not reconcile payments.")


@router.post("/{payment_id}/route")
async def route_again(
    payment_id: str, payment: PaymentToRoute, identity: Internal, flow: Flow
) -> dict:
    """Route (again) a payment still ``pending``: the same idempotent flow as the consumer, so a
    payment already decided is only re-reported, never charged twice."""
    _only_reconcilers(identity)
    if payment.id != payment_id:
        raise Problem(422, "payment-mismatch", "The body names another payment.")
    try:
        decided = await route_payment(flow, payment=payment.model_dump())
    except (RetryLater, Unavailable) as exc:
        raise Problem(503, "routing-postponed", str(exc), headers={"Retry-After": "5"}) from None
    except PaymentUnknown as exc:
        raise Problem(404, "payment-not-found", str(exc)) from None
    return {"outcome": decided.outcome, "provider": decided.provider, "reason": decided.reason}


@router.get("/{payment_id}/charge")
async def charge_status(
    payment_id: str, provider: str, identity: Internal, sessions: Sessions, flow: Flow
) -> dict:
    """What ``provider`` says about this payment's charge. ``reachable: false`` when the
    provider could not answer (the reconciler counts how long that lasts)."""
    _only_reconcilers(identity)
    async with sessions() as session:
        found = await registry.get_provider(session, name=provider)
    if found is None:
        raise Problem(404, "unknown-provider", f"No provider {provider}.")
    secrets = registry.secrets_of(found, box=flow.box)
    try:
        charge = await provider_client.charge_status(
            flow.http,
            endpoint=found.endpoint,
            api_key=secrets.api_key,
            payment_id=payment_id,
            timeout_seconds=found.timeout_ms / 1000,
        )
    except provider_client.ChargeStatusUnavailable as exc:
        return {"provider": provider, "reachable": False, "error": str(exc), "charge": None}
    return {"provider": provider, "reachable": True, "error": None, "charge": charge}
