"""Status conditions (the Kubernetes convention: type, status, reason, message, time)."""

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any


def condition(
    previous: Sequence[Mapping[str, Any]] | None,
    type_: str,
    ok: bool,
    reason: str,
    message: str,
    generation: int | None = None,
) -> dict[str, Any]:
    """The condition; its lastTransitionTime moves only when its status changes."""
    status = "True" if ok else "False"
    before = next((c for c in previous or [] if c.get("type") == type_), None)
    at = (
        before["lastTransitionTime"]
        if before and before.get("status") == status
        else datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    )
    out = {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": at,
    }
    if generation is not None:
        out["observedGeneration"] = generation
    return out


def merge(
    previous: Sequence[Mapping[str, Any]] | None, *updates: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Previous conditions with these replaced (by type), in a stable order."""
    by_type = {c["type"]: dict(c) for c in previous or []}
    by_type.update({u["type"]: dict(u) for u in updates})
    return [by_type[t] for t in sorted(by_type)]
