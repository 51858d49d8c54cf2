"""W3C trace context: each hop keeps the trace id and names itself as the new parent."""

import os
import re

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def child_traceparent(parent: str | None) -> str:
    """A traceparent for our own span: same trace as ``parent`` if valid, else a new trace."""
    match = _TRACEPARENT.fullmatch(parent or "")
    if match and match.group(1) != "0" * 32:
        trace_id, flags = match.group(1), match.group(3)
    else:
        trace_id, flags = os.urandom(16).hex(), "01"
    return f"00-{trace_id}-{os.urandom(8).hex()}-{flags}"
