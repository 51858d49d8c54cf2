"""Internal API of the notifier (operators and the CLI; never merchants, never the ingress)."""

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from payplane_core.app import Internal
from payplane_core.pagination import CursorNotFound
from payplane_core.problems import Problem

from workers.notifier import service, store
from workers.notifier.api.deps import NotifierDep, Sessions
from workers.notifier.models import Delivery
from workers.notifier.schemas import (
    AttemptOut,
    DeliveryDetail,
    DeliveryOut,
    DeliveryPage,
    Redelivered,
)


async def _operator(identity: Internal) -> str:
    if identity.caller == "gateway":
        raise Problem(403, "internal-only", "Deliveries are not reachable from the ingress.")
    return identity.caller


router = APIRouter(
    prefix="/internal/v1/deliveries", tags=["deliveries"], dependencies=[Depends(_operator)]
)


def delivery_out(delivery: Delivery) -> DeliveryOut:
    return DeliveryOut(
        id=delivery.id,
        webhook_id=delivery.event_id,
        merchant_id=delivery.merchant_id,
        payment_id=delivery.payment_id,
        event_type=delivery.event_type,
        state=delivery.state,
        attempts=delivery.attempts,
        next_attempt_at=delivery.next_attempt_at if delivery.state == "pending" else None,
        last_status=delivery.last_status,
        last_error=delivery.last_error,
        created_at=delivery.created_at,
        updated_at=delivery.updated_at,
        delivered_at=delivery.delivered_at,
    )


def _not_found(ident: str) -> Problem:
    return Problem(404, "delivery-not-found", f"No delivery {ident}.")


@router.get("", response_model=DeliveryPage)
async def list_deliveries(
    sessions: Sessions,
    state: Literal["pending", "delivered", "failed"] | None = None,
    merchant_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    starting_after: Annotated[str | None, Query(max_length=40)] = None,
) -> DeliveryPage:
    async with sessions() as session:
        try:
            rows, has_more = await store.list_deliveries(
                session,
                state=state,
                merchant_id=merchant_id,
                limit=limit,
                starting_after=starting_after,
            )
        except CursorNotFound:
            raise _not_found(starting_after or "") from None
    data = [delivery_out(d) for d in rows]
    return DeliveryPage(data=data, has_more=has_more, next_cursor=data[-1].id if has_more else None)


@router.get("/{ident}", response_model=DeliveryDetail)
async def show_delivery(ident: Annotated[str, Path(max_length=40)], sessions: Sessions):
    async with sessions() as session:
        delivery = await store.find_delivery(session, ident=ident)
        if delivery is None:
            raise _not_found(ident)
        attempts = await store.attempts_of(session, delivery_id=delivery.id)
    return DeliveryDetail(
        **delivery_out(delivery).model_dump(),
        attempt_log=[AttemptOut.model_validate(a, from_attributes=True) for a in attempts],
    )


@router.post("/{ident}/redeliver", response_model=Redelivered)
async def redeliver(
    ident: Annotated[str, Path(max_length=40)], sessions: Sessions, notifier: NotifierDep
) -> Redelivered:
    """One attempt now, with the same ``webhook-id``; the answer says how it went."""
    try:
        delivery, outcome = await service.redeliver(notifier, ident=ident)
    except service.DeliveryNotFound:
        raise _not_found(ident) from None
    except service.DeliveryBusy as exc:
        raise Problem(
            409,
            "delivery-busy",
            "This delivery is still being retried automatically or is being sent right now.",
            state=exc.state,
        ) from None
    async with sessions() as session:
        [*_, last] = await store.attempts_of(session, delivery_id=delivery.id)
    return Redelivered(
        delivery=delivery_out(delivery),
        attempt=AttemptOut.model_validate(last, from_attributes=True),
    )
