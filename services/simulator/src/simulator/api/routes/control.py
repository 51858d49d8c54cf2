"""Run-time control of the simulator: fault injection, counters, callback log."""

from dataclasses import asdict

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from simulator.api.deps import LedgerDep, require_api_key
from simulator.ledger import Control

router = APIRouter(prefix="/v1", tags=["control"], dependencies=[Depends(require_api_key)])


class ControlIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    latency_ms: int = Field(default=0, ge=0, le=600_000)
    error_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    error_after_charge_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    callbacks_enabled: bool = True


@router.get("/control")
async def get_control(ledger: LedgerDep) -> dict:
    return asdict(ledger.control)


@router.put("/control")
async def set_control(body: ControlIn, ledger: LedgerDep) -> dict:
    ledger.control = Control(**body.model_dump())
    return asdict(ledger.control)


@router.get("/stats")
async def stats(ledger: LedgerDep) -> dict:
    return ledger.stats()


@router.get("/webhook-deliveries")
async def deliveries(ledger: LedgerDep, payment_id: str | None = None) -> dict:
    rows = [asdict(d) for d in ledger.deliveries if payment_id in (None, d.payment_id)]
    return {"data": rows[-500:]}
