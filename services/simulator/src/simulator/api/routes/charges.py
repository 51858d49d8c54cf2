"""``/v1/charges``: the provider's charge API, idempotent on the platform's payment id."""

import asyncio
import random
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from payplane_core.problems import Problem
from pydantic import BaseModel, ConfigDict, Field

from simulator.api.deps import LedgerDep, SettingsDep, require_api_key
from simulator.callbacks import deliver, settle_and_notify
from simulator.ledger import NOT_CHARGED, Charge, ChargeStatus, Ledger
from simulator.rules import Outcome, outcome_for

router = APIRouter(prefix="/v1/charges", tags=["charges"], dependencies=[Depends(require_api_key)])


class ChargeIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    payment_id: str = Field(min_length=1, max_length=64, description="Idempotency key.")
    amount: int = Field(gt=0)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    description: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


def _background(request: Request, coro) -> None:
    tasks: set[asyncio.Task] = request.app.state.tasks
    task = asyncio.create_task(coro)
    tasks.add(task)
    task.add_done_callback(tasks.discard)


def _existing_answer(charge: Charge, body: ChargeIn) -> JSONResponse:
    """A repeat of a known payment id: replay, never a second charge."""
    if charge.status in NOT_CHARGED:  # in flight, canceled (or a cancel's tombstone), abandoned
        raise Problem(
            409,
            "charge-not-processed",
            f"This payment's charge is {charge.status}; it will not be charged.",
            charge_status=charge.status.value,
        )
    if (charge.amount, charge.currency) != (body.amount, body.currency):
        raise Problem(
            422,
            "idempotency-mismatch",
            "This payment id was already used with a different amount or currency.",
        )
    return JSONResponse(charge.public(), headers={"Idempotent-Replayed": "true"})


REPLAYED = {200: {"description": "A repeat of a charged payment id: the charge, replayed."}}


@router.post("", status_code=201, responses=REPLAYED)
async def create_charge(
    body: ChargeIn, request: Request, settings: SettingsDep, ledger: LedgerDep
) -> JSONResponse:
    ledger.requests_seen += 1
    ledger.in_flight += 1
    try:
        return await _create_charge(body, request, settings, ledger)
    finally:
        ledger.in_flight -= 1


async def _create_charge(
    body: ChargeIn, request: Request, settings, ledger: Ledger
) -> JSONResponse:
    control = ledger.control
    if control.error_rate and random.random() < control.error_rate:  # noqa: S311 - fault injection
        raise Problem(503, "injected-error", "Simulated provider error; nothing was charged.")
    async with ledger.locks[body.payment_id]:
        existing = ledger.charges.get(body.payment_id)
        if existing is not None:
            existing.requests += 1
            return _existing_answer(existing, body)
        outcome = outcome_for(amount=body.amount, metadata=body.metadata)
        charge = ledger.new_charge(
            payment_id=body.payment_id, amount=body.amount, currency=body.currency, outcome=outcome
        )
        held = control.latency_ms > 0 or outcome is Outcome.TIMEOUT
        if not held:
            ledger.accept(charge)
    if held:
        await _hold_then_accept(ledger, charge, control.latency_ms, settings)
    _background(
        request,
        settle_and_notify(
            settings=settings, ledger=ledger, http=request.app.state.http, charge=charge
        ),
    )
    if control.error_after_charge_rate and random.random() < control.error_after_charge_rate:  # noqa: S311
        raise Problem(500, "injected-error-after-charge", "Simulated provider error.")
    return JSONResponse(charge.public(), status_code=201)


@router.get("/{payment_id}")
async def get_charge(payment_id: str, ledger: LedgerDep) -> dict:
    return _charge_or_404(ledger, payment_id).public()


@router.post("/{payment_id}/cancel")
async def cancel_charge(payment_id: str, ledger: LedgerDep) -> JSONResponse:
    """Cancel before acceptance (the platform's answer to a time-out). Leaves a tombstone for an
    unknown id so a request still in flight can never charge later. 409 once charged."""
    async with ledger.locks[payment_id]:
        charge = ledger.charges.get(payment_id)
        if charge is None:
            # A tombstone, never charged: XXX is ISO 4217's "no currency", the amount a placeholder.
            charge = ledger.new_charge(
                payment_id=payment_id, amount=1, currency="XXX", outcome=Outcome.SUCCEED
            )
            charge.requests = 0
        if charge.status is ChargeStatus.RECEIVED:
            charge.status = ChargeStatus.CANCELED
        if charge.status not in NOT_CHARGED:
            raise Problem(
                409, "already-charged", "This payment was already charged.", charge=charge.public()
            )
        return JSONResponse(charge.public())


@router.post("/{payment_id}/resend-webhook", status_code=202)
async def resend_webhook(
    payment_id: str, request: Request, settings: SettingsDep, ledger: LedgerDep
) -> dict:
    """Send the final outcome again with the same webhook id (a provider-side duplicate)."""
    charge = _charge_or_404(ledger, payment_id)
    if charge.status not in (ChargeStatus.SUCCEEDED, ChargeStatus.FAILED):
        raise Problem(409, "no-outcome-yet", "This charge has no final outcome to resend.")
    _background(
        request,
        deliver(settings=settings, ledger=ledger, http=request.app.state.http, charge=charge),
    )
    return {"resent": True, "payment_id": payment_id}


async def _hold_then_accept(ledger: Ledger, charge: Charge, latency_ms: int, settings) -> None:
    """Slow before acceptance: a cancel arriving meanwhile stops the charge (see cancel_charge);
    repeats meanwhile get 409 (in flight)."""
    await asyncio.sleep(latency_ms / 1000)
    if charge.outcome is Outcome.TIMEOUT:
        await asyncio.sleep(settings.SIM_TIMEOUT_HOLD_SECONDS)
    async with ledger.locks[charge.payment_id]:
        if charge.status is not ChargeStatus.RECEIVED:
            raise Problem(
                409,
                "charge-not-processed",
                f"This charge was {charge.status}.",
                charge_status=charge.status.value,
            )
        if charge.outcome is Outcome.TIMEOUT:
            charge.status = ChargeStatus.ABANDONED
            raise Problem(504, "provider-timeout", "Simulated time-out; nothing was charged.")
        ledger.accept(charge)


def _charge_or_404(ledger: Ledger, payment_id: str) -> Charge:
    charge = ledger.charges.get(payment_id)
    if charge is None:
        raise Problem(404, "charge-not-found", f"No charge for payment {payment_id}.")
    return charge
