"""The payment state machine, every pair of statuses."""

import itertools

import pytest
from payments.state import TRANSITIONS, IllegalTransition, Status, check_transition

ALLOWED = {
    (Status.PENDING, Status.PROCESSING),
    (Status.PENDING, Status.FAILED),
    (Status.PENDING, Status.CANCELED),
    (Status.PROCESSING, Status.SUCCEEDED),
    (Status.PROCESSING, Status.FAILED),
}


@pytest.mark.parametrize(("current", "target"), list(itertools.product(Status, Status)))
def test_only_the_documented_transitions_are_allowed(current: Status, target: Status) -> None:
    if (current, target) in ALLOWED:
        check_transition(current, target)
    else:
        with pytest.raises(IllegalTransition) as refused:
            check_transition(current, target)
        assert str(refused.value) == f"a {current} payment cannot become {target}"


def test_final_statuses_have_no_way_out() -> None:
    assert {s for s, following in TRANSITIONS.items() if not following} == {
        Status.SUCCEEDED,
        Status.FAILED,
        Status.CANCELED,
    }
