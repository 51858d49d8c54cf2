"""The simulated provider's books: charges keyed by the platform's payment id (idempotency key).

Kept in memory: a simulator's state lives as long as its process. Every change to one payment's
charge happens under that payment's lock, so concurrent repeats can never charge twice.
"""

import asyncio
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from payplane_core.ids import new_id

from simulator.rules import Outcome


class ChargeStatus(StrEnum):
    RECEIVED = "received"  # request in hand, not yet accepted (injected latency, hold)
    PROCESSING = "processing"  # accepted and charged; the outcome callback follows
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"  # canceled before acceptance: never charged
    ABANDONED = "abandoned"  # the "timeout" rule: held, answered 504, never charged


NOT_CHARGED = frozenset({ChargeStatus.RECEIVED, ChargeStatus.CANCELED, ChargeStatus.ABANDONED})


@dataclass
class Charge:
    id: str
    payment_id: str
    amount: int
    currency: str
    outcome: Outcome
    status: ChargeStatus
    provider: str
    created_at: str
    failure_reason: str | None = None
    requests: int = 1  # how many times the platform asked for this payment

    def public(self) -> dict[str, Any]:
        data = asdict(self)
        data["charged"] = self.status not in NOT_CHARGED
        return data


@dataclass
class Control:
    """Run-time fault injection."""

    latency_ms: int = 0
    error_rate: float = 0.0  # 503 before anything is charged
    # 500 after the charge was made (as a crash or a proxy failing on the way back would):
    # the answer says "error", the money moved anyway.
    error_after_charge_rate: float = 0.0
    # Off: outcomes are decided but never called back (the platform must sync their status).
    callbacks_enabled: bool = True


@dataclass
class Delivery:
    webhook_id: str
    payment_id: str
    type: str
    attempt: int
    status: int | None
    error: str | None
    at: str


@dataclass
class Ledger:
    provider: str
    charges: dict[str, Charge] = field(default_factory=dict)
    locks: defaultdict[str, asyncio.Lock] = field(default_factory=lambda: defaultdict(asyncio.Lock))
    control: Control = field(default_factory=Control)
    deliveries: list[Delivery] = field(default_factory=list)
    charges_made: int = 0  # charges that moved money: the "exactly one charge" count
    requests_seen: int = 0  # every authenticated POST /v1/charges, refused ones included
    in_flight: int = 0  # POST /v1/charges not yet answered (held ones included)

    def new_charge(
        self, *, payment_id: str, amount: int, currency: str, outcome: Outcome
    ) -> Charge:
        charge = Charge(
            id=new_id("ch"),
            payment_id=payment_id,
            amount=amount,
            currency=currency,
            outcome=outcome,
            status=ChargeStatus.RECEIVED,
            provider=self.provider,
            created_at=datetime.now(UTC).isoformat(),
        )
        self.charges[payment_id] = charge
        return charge

    def accept(self, charge: Charge) -> None:
        charge.status = ChargeStatus.PROCESSING
        self.charges_made += 1

    def stats(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "charges_made": self.charges_made,
            "requests_seen": self.requests_seen,
            "in_flight": self.in_flight,
            "charges": len(self.charges),
            "deliveries": len(self.deliveries),
        }
