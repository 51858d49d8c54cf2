"""The merchant-facing payments API (reached only through the gateway)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import Response
from payplane_core.pagination import CursorNotFound
from payplane_core.problems import Problem

from payments import create, idempotency, metrics, quota, service
from payments.api.deps import (
    ClockDep,
    Engine,
    MerchantReader,
    MerchantWriter,
    QuotaDep,
    SessionDep,
    SettingsDep,
    SnapshotsDep,
    require_json,
    trace_headers,
)
from payments.schemas import PaymentCreate, PaymentId, PaymentOut, PaymentPage, Tracking
from payments.views import payment_json

router = APIRouter(prefix="/api/v1/payments", tags=["payments"])


def _not_found(payment_id: str) -> Problem:
    return Problem(404, "payment-not-found", f"No payment {payment_id} for this merchant.")


async def mark_quota_reservation(request: Request, merchant_id: MerchantWriter) -> None:
    """First thing: whatever happens next, the gateway's quota reservation gets settled."""
    setattr(request.state, quota.STATE_KEY, merchant_id)


@router.post(
    "",
    status_code=201,
    response_model=PaymentOut,
    dependencies=[Depends(mark_quota_reservation), Depends(require_json)],
)
async def create_payment(
    body: PaymentCreate,
    request: Request,
    merchant_id: MerchantWriter,
    engine: Engine,
    settings: SettingsDep,
    clock: ClockDep,
    ledger: QuotaDep,
    snapshots: SnapshotsDep,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> Response:
    new = create.NewPayment(
        merchant_id=merchant_id,
        data=body,
        key=idempotency.validate_key(idempotency_key) if idempotency_key is not None else None,
        headers=trace_headers(request),
    )
    result = await create.create_payment(
        engine, new, keys=create.KeyPolicy.from_settings(settings), now=clock()
    )
    if isinstance(result, idempotency.Replay):
        return Response(
            result.body,
            status_code=result.status,
            media_type="application/json",
            headers={"Idempotent-Replayed": "true"},
        )
    snapshots.keep(result.payment)
    if ledger is not None:
        await ledger.counted(merchant_id, result.used)
    metrics.CREATED.inc()
    return Response(
        result.body,
        status_code=201,
        media_type="application/json",
        headers={"Location": f"/api/v1/payments/{result.payment.id}/show"},
    )


@router.get("", response_model=PaymentPage)
async def list_payments(
    merchant_id: MerchantReader,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    starting_after: Annotated[PaymentId | None, Query()] = None,
) -> PaymentPage:
    try:
        rows, has_more = await service.list_payments(
            session, merchant_id=merchant_id, limit=limit, starting_after=starting_after
        )
    except CursorNotFound:
        raise _not_found(starting_after or "") from None
    data = [PaymentOut.model_validate(payment_json(p)) for p in rows]
    return PaymentPage(data=data, has_more=has_more, next_cursor=data[-1].id if has_more else None)


@router.get("/{payment_id}/show", response_model=PaymentOut)
async def show_payment(
    payment_id: PaymentId, merchant_id: MerchantReader, session: SessionDep
) -> dict:
    try:
        payment = await service.get_payment(session, payment_id=payment_id, merchant_id=merchant_id)
    except service.PaymentNotFound:
        raise _not_found(payment_id) from None
    return payment_json(payment)


@router.get("/{payment_id}/tracking", response_model=Tracking)
async def track_payment(
    payment_id: PaymentId, merchant_id: MerchantReader, session: SessionDep
) -> dict:
    try:
        payment = await service.get_payment(session, payment_id=payment_id, merchant_id=merchant_id)
    except service.PaymentNotFound:
        raise _not_found(payment_id) from None
    events = await service.timeline(session, payment_id=payment.id)
    return {
        "payment_id": payment.id,
        "status": payment.status,
        "events": [
            {"type": e.type, "status": e.status, "at": e.at, "source": e.source, "detail": e.detail}
            for e in events
        ],
    }
