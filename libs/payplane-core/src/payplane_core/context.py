"""Per-request context (request id) carried in a contextvar so logs can include it."""

import re
import uuid
from contextvars import ContextVar

request_id_var: ContextVar[str] = ContextVar("request_id", default="")

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def accept_or_new_request_id(candidate: str | None) -> str:
    """Keep a well-formed incoming id (Envoy sets one); replace anything else."""
    if candidate and _VALID_REQUEST_ID.fullmatch(candidate):
        return candidate
    return uuid.uuid4().hex
