"""The one CSV split, the one compact JSON spelling and the one Retry-After rounding."""

import pytest
from payplane_core.problems import retry_after
from payplane_core.strictjson import compact
from payplane_core.text import split_csv


def test_split_csv_trims_and_drops_empty_parts():
    assert split_csv(" a, b,,c ,") == ["a", "b", "c"]
    assert split_csv("") == []


def test_compact_json_has_no_spaces_and_escapes_to_ascii():
    assert compact({"b": 1, "a": ["é", None]}) == '{"b":1,"a":["\\u00e9",null]}'


@pytest.mark.parametrize(
    ("seconds", "header"), [(0, "1"), (0.01, "1"), (1.0, "1"), (1.2, "2"), (59.9, "60")]
)
def test_retry_after_is_whole_seconds_rounded_up_and_never_zero(seconds, header):
    assert retry_after(seconds) == header
