"""JSON with one meaning. In: a field given twice is refused, not silently last-one-wins (a
signature or an intermediary could otherwise see another value than the service). Out:
``compact``, the one spelling of a body that is stored, signed or cached byte for byte."""

import json
from typing import Any

from payplane_core.problems import Problem


def compact(value: Any) -> str:
    """No spaces, ASCII only (``\\u`` escapes), key order as given."""
    return json.dumps(value, separators=(",", ":"))


class _DuplicateField(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for name, _ in pairs:
        if name in seen:
            raise _DuplicateField(name)
        seen.add(name)
    return dict(pairs)


def refuse_duplicate_fields(raw: bytes) -> None:
    """400 problem if any JSON object in ``raw`` repeats a field; malformed JSON is left to the
    framework's own parsing (which answers 400 malformed-json)."""
    try:
        json.loads(raw, object_pairs_hook=_unique)
    except _DuplicateField as exc:
        raise Problem(
            400,
            "duplicate-json-field",
            f"The field {json.dumps(exc.name[:64])} appears more than once in one JSON object.",
        ) from None
    except ValueError:
        return
