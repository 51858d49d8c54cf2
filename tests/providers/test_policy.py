"""The routing policy, without I/O: what each provider answer proves, and what follows from it.
The rule under test: a second provider may charge only once the first is known not to have."""

from dataclasses import dataclass

import pytest
from providers.policy import (
    CallOutcome,
    Next,
    Resolution,
    Result,
    after_cancel,
    after_charge,
    classify_cancel,
    classify_charge,
    counts_against_provider,
    holder,
    unsettled,
)


@pytest.mark.parametrize("status", [200, 201, 202])
def test_2xx_is_accepted_and_the_payment_stays(status):
    outcome = classify_charge(status, {"id": "ch_1"})
    assert (outcome.result, outcome.charge) == (Result.ACCEPTED, {"id": "ch_1"})
    assert after_charge(outcome) is Next.KEEP


@pytest.mark.parametrize("status", [500, 502, 503, 504, 599])
def test_5xx_is_ambiguous_and_is_canceled_before_any_failover(status):
    outcome = classify_charge(status, {"type": "https://payplane.dev/problems/injected-error"})
    assert outcome.result is Result.AMBIGUOUS
    assert outcome.error == "injected-error"
    assert after_charge(outcome) is Next.CANCEL
    assert counts_against_provider(outcome)


def test_5xx_without_a_problem_body_still_names_its_status():
    assert classify_charge(502, {}).error == "http_502"


@pytest.mark.parametrize("status", [400, 401, 402, 404, 422])
def test_4xx_is_a_refusal_nothing_charged(status):
    outcome = classify_charge(status, {})
    assert outcome.result is Result.REFUSED
    assert after_charge(outcome) is Next.FAIL_OVER
    assert not counts_against_provider(outcome)  # our request, not the provider's health


def test_409_still_in_flight_is_ambiguous_but_409_canceled_is_a_refusal():
    in_flight = classify_charge(409, {"charge_status": "received"})
    assert (in_flight.result, after_charge(in_flight)) == (Result.AMBIGUOUS, Next.CANCEL)
    canceled = classify_charge(409, {"charge_status": "canceled"})
    assert (canceled.result, after_charge(canceled)) == (Result.REFUSED, Next.FAIL_OVER)


def test_transport_outcomes():
    not_sent = CallOutcome(Result.NOT_SENT, error="ConnectError")
    assert after_charge(not_sent) is Next.FAIL_OVER
    assert counts_against_provider(not_sent)
    timed_out = CallOutcome(Result.AMBIGUOUS, error="ReadTimeout")
    assert after_charge(timed_out) is Next.CANCEL


def test_cancel_answers():
    assert classify_cancel(200, {"status": "canceled"}) == (
        Resolution.NOT_CHARGED,
        {"status": "canceled"},
    )
    assert classify_cancel(409, {"charge": {"id": "ch_1"}}) == (
        Resolution.CHARGED,
        {"id": "ch_1"},
    )
    for status in (401, 404, 500, 503):
        assert classify_cancel(status, {}) == (Resolution.UNKNOWN, None)


def test_after_cancel():
    assert after_cancel(Resolution.CHARGED) is Next.KEEP  # already charged: it stays there
    assert after_cancel(Resolution.NOT_CHARGED) is Next.FAIL_OVER  # confirmed: next may charge
    assert after_cancel(Resolution.UNKNOWN) is Next.WAIT  # nobody else may charge yet


@pytest.mark.parametrize(
    ("status", "cancel_status", "expected"),
    [
        (503, 409, Next.KEEP),  # the 5xx came after the charge: never a second charge
        (503, 200, Next.FAIL_OVER),  # confirmed not charged: fail over
        (503, 503, Next.WAIT),  # the cancel is not confirmed either: wait
        (402, None, Next.FAIL_OVER),
        (201, None, Next.KEEP),
    ],
)
def test_a_charge_then_its_cancel(status, cancel_status, expected):
    step = after_charge(classify_charge(status, {}))
    if step is Next.CANCEL:
        step = after_cancel(classify_cancel(cancel_status, {})[0])
    assert step is expected


@dataclass
class _Attempt:
    provider: str
    state: str


def test_earlier_attempts():
    attempts = [
        _Attempt("sim-a", "canceled"),
        _Attempt("sim-b", "unknown"),
        _Attempt("sim-c", "sending"),
        _Attempt("sim-d", "failed"),
    ]
    assert holder(attempts) is None
    assert [a.provider for a in unsettled(attempts)] == ["sim-b", "sim-c"]
    assert holder([*attempts, _Attempt("sim-e", "accepted")]) == "sim-e"
