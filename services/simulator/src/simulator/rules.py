"""Which outcome a charge gets: chosen deterministically by its input, like test card numbers.

The rules, by the amount's last two digits (minor units), unless ``metadata.sim_outcome`` names
an outcome explicitly (``succeed``, ``decline``, ``fail_after_delay``, ``timeout``):

======  =================  ==============================================================
 ..51   decline            accepted, then a ``charge.failed`` callback, reason card_declined
 ..61   fail_after_delay   accepted, then ``charge.failed`` after SIM_FAIL_DELAY_MS,
                           reason processing_error
 ..71   timeout            the request is held SIM_TIMEOUT_HOLD_SECONDS and answered 504;
                           nothing is charged
 other  succeed            accepted, then a ``charge.succeeded`` callback
======  =================  ==============================================================

Run-time injection (``PUT /v1/control``) comes on top: added latency before a request is
processed, and an error rate answered 503 before anything is recorded.
"""

from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    SUCCEED = "succeed"
    DECLINE = "decline"
    FAIL_AFTER_DELAY = "fail_after_delay"
    TIMEOUT = "timeout"


BY_LAST_TWO_DIGITS = {51: Outcome.DECLINE, 61: Outcome.FAIL_AFTER_DELAY, 71: Outcome.TIMEOUT}


def outcome_for(*, amount: int, metadata: dict[str, Any]) -> Outcome:
    explicit = metadata.get("sim_outcome")
    if explicit in Outcome.__members__.values():
        return Outcome(explicit)
    return BY_LAST_TWO_DIGITS.get(amount % 100, Outcome.SUCCEED)


FAILURE_REASONS = {Outcome.DECLINE: "card_declined", Outcome.FAIL_AFTER_DELAY: "processing_error"}
