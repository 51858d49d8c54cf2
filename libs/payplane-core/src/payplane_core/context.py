"""Per-request context (request id) carried in a contextvar so logs can include it, and a
request's headers as the platform reads them."""

import re
import uuid
from collections.abc import Iterable
from contextvars import ContextVar

request_id_var: ContextVar[str] = ContextVar("request_id", default="")

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def accept_or_new_request_id(candidate: str | None) -> str:
    """Keep a well-formed incoming id (Envoy sets one); replace anything else."""
    if candidate and _VALID_REQUEST_ID.fullmatch(candidate):
        return candidate
    return uuid.uuid4().hex


def first_values(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """An ASGI request's headers by name, the first of repeated ones (what Starlette's
    ``Headers.get`` answers), decoded once: each ``get`` on ``Headers`` scans and decodes the
    whole list again, and the signature check reads a dozen of them."""
    headers: dict[str, str] = {}
    for name, value in raw:
        headers.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
    return headers
