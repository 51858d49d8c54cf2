"""What to do next with a payment at a provider, given what the provider answered: pure rules,
no I/O (``flow`` does the calls and the bookkeeping, and follows these answers).

The one rule behind all of them: a payment may be charged by a second provider only once the
first one is *known* not to have charged it. An answer proves "not charged" only when the
provider says so in a way it cannot take back: a refusal (4xx) or a confirmed cancel. A time-out,
a dropped connection and a 5xx prove nothing (the provider may have charged and then failed to
answer, or a proxy in front of it may have failed after the charge): those are settled by a
cancel at that provider before anyone else is asked.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol


class Result(StrEnum):
    """What one charge call proves about the money."""

    ACCEPTED = "accepted"  # charged: the payment belongs to this provider now
    NOT_SENT = "not_sent"  # connection refused or failed to connect: certainly not charged
    REFUSED = "refused"  # the provider refused it (4xx): not charged
    AMBIGUOUS = "ambiguous"  # time-out, reset, 5xx, still in flight there: maybe charged


class Resolution(StrEnum):
    """What a cancel at the provider established."""

    NOT_CHARGED = "not_charged"  # canceled (or never seen, and now blocked from charging)
    CHARGED = "charged"  # too late to cancel: it was charged
    UNKNOWN = "unknown"  # no answer we can trust


class Next(StrEnum):
    KEEP = "keep"  # the payment stays with this provider: routing is decided
    CANCEL = "cancel"  # maybe charged: cancel at this provider before anyone else may charge
    FAIL_OVER = "fail_over"  # certainly not charged: the next provider may try
    WAIT = "wait"  # still unknown: back to the queue, and this provider is settled first


@dataclass(frozen=True)
class CallOutcome:
    result: Result
    http_status: int | None = None
    charge: dict[str, Any] | None = None
    error: str | None = None


def classify_charge(status: int, body: dict[str, Any]) -> CallOutcome:
    """An HTTP answer to ``POST /v1/charges`` (a transport failure is classified by the caller)."""
    if 200 <= status < 300:
        return CallOutcome(Result.ACCEPTED, status, charge=body)
    if status >= 500:
        # A 5xx is no promise that nothing happened: the charge may have gone through before
        # the error (or a proxy answered for a provider that did charge).
        return CallOutcome(Result.AMBIGUOUS, status, error=_error_of(body, f"http_{status}"))
    if status == 409 and body.get("charge_status") == "received":
        # An earlier request for this payment is still in flight there.
        return CallOutcome(Result.AMBIGUOUS, status, error="in_flight")
    return CallOutcome(Result.REFUSED, status, error=_error_of(body, f"http_{status}"))


def classify_cancel(status: int, body: dict[str, Any]) -> tuple[Resolution, dict | None]:
    """An HTTP answer to ``POST /v1/charges/{id}/cancel``: 2xx canceled, 409 already charged."""
    if 200 <= status < 300:
        return Resolution.NOT_CHARGED, body
    if status == 409:
        return Resolution.CHARGED, body.get("charge")
    return Resolution.UNKNOWN, None


def after_charge(outcome: CallOutcome) -> Next:
    if outcome.result is Result.ACCEPTED:
        return Next.KEEP
    if outcome.result is Result.AMBIGUOUS:
        return Next.CANCEL
    return Next.FAIL_OVER


def after_cancel(resolution: Resolution) -> Next:
    return {
        Resolution.CHARGED: Next.KEEP,
        Resolution.NOT_CHARGED: Next.FAIL_OVER,
        Resolution.UNKNOWN: Next.WAIT,
    }[resolution]


def counts_against_provider(outcome: CallOutcome) -> bool:
    """A breaker failure: the provider is unreachable, slow or erroring, not refusing our input."""
    return outcome.result in (Result.NOT_SENT, Result.AMBIGUOUS)


class AttemptLike(Protocol):
    provider: str
    state: str


UNSETTLED = frozenset({"sending", "unknown"})  # started, result never learned


def holder(attempts: Iterable[AttemptLike]) -> str | None:
    """The provider an earlier attempt left the payment with (a worker died after the charge)."""
    return next((a.provider for a in attempts if a.state == "accepted"), None)


def unsettled(attempts: Iterable[AttemptLike]) -> list[AttemptLike]:
    """Earlier attempts to settle (cancel) before any provider may be asked to charge."""
    return [a for a in attempts if a.state in UNSETTLED]


def _error_of(body: dict[str, Any], default: str) -> str:
    kind = body.get("type")
    return kind.rsplit("/", 1)[-1] if isinstance(kind, str) and kind else default
