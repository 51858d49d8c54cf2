"""Internal API for other services (providers, webhooks): never routed by the ingress."""

from fastapi import APIRouter, Request
from payplane_core.app import Internal
from payplane_core.db import driver_connection
from payplane_core.problems import Problem

from payments import metrics, service
from payments.api.deps import ClockDep, Engine, Sessions, SnapshotsDep, trace_headers
from payments.schemas import EventIn, EventResult, PaymentId, PaymentOut
from payments.state import IllegalTransition
from payments.views import payment_json

router = APIRouter(prefix="/internal/v1/payments", tags=["internal"])


@router.get("/{payment_id}", response_model=PaymentOut)
async def get_payment(payment_id: PaymentId, sessions: Sessions) -> dict:
    async with sessions() as session:
        try:
            payment = await service.get_payment(session, payment_id=payment_id, merchant_id=None)
        except service.PaymentNotFound:
            raise Problem(404, "payment-not-found", f"No payment {payment_id}.") from None
        return payment_json(payment)


@router.post("/{payment_id}/events", response_model=EventResult)
async def record_event(
    payment_id: PaymentId,
    event: EventIn,
    identity: Internal,
    request: Request,
    engine: Engine,
    clock: ClockDep,
    snapshots: SnapshotsDep,
) -> dict:
    if identity.caller == "gateway":
        raise Problem(403, "internal-only", "Merchants cannot report payment events.")
    try:
        async with driver_connection(engine) as conn:
            payment, changed = await service.record_event(
                conn,
                payment_id=payment_id,
                event=event,
                headers=trace_headers(request),
                at=clock(),
                snapshots=snapshots,
            )
            result = payment_json(payment)
    except service.PaymentNotFound:
        raise Problem(404, "payment-not-found", f"No payment {payment_id}.") from None
    except service.WrongProvider as exc:
        metrics.REFUSED_REPORTS.labels("wrong_provider").inc()
        raise Problem(409, "wrong-provider", str(exc)) from None
    except service.ChargeMismatch as exc:
        metrics.REFUSED_REPORTS.labels("charge_mismatch").inc()
        raise Problem(409, "charge-mismatch", str(exc)) from None
    except IllegalTransition as exc:
        raise Problem(
            409,
            "illegal-transition",
            str(exc),
            current=exc.current.value,
            requested=exc.target.value,
        ) from None
    metrics.record_change(status=payment.status, provider=payment.provider, changed=changed)
    return {"payment": result, "changed": changed}
