"""Standard Webhooks verification of the raw request bytes, before anything is parsed.

The ``standardwebhooks`` library does the cryptography (HMAC-SHA256, constant-time compare);
the checks around it only classify why a request is refused, for the audit log.
"""

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

PROVIDER_HEADER = "webhook-provider"
# Every header the signature check depends on: each must come exactly once (a second
# webhook-id could otherwise let a captured callback pass under another id).
SIGNATURE_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature", PROVIDER_HEADER)
MAX_PROVIDER_LENGTH = 63  # the providers registry's name limit
MAX_WEBHOOK_ID_LENGTH = 255
MAX_SIGNATURE_HEADER_LENGTH = 4096  # several rotated v1 signatures fit easily
# What a verified event may name (the payment id also becomes part of an internal URL).
_PAYMENT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_EVENT_TYPE = re.compile(r"[a-z][a-z0-9_.]{0,63}")
_CURRENCY = re.compile(r"[A-Z]{3}")
# A provider event type → the payment status it reports (others are timeline steps only).
STATUS_OF = {"charge.succeeded": "succeeded", "charge.failed": "failed"}


class Rejected(Exception):
    """The webhook is refused; ``reason`` is a short stable code for the audit log."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Verified:
    provider: str
    webhook_id: str
    timestamp: int
    event: dict[str, Any]


def claimed_timestamp(headers: Mapping[str, str]) -> int | None:
    try:
        return int(headers.get("webhook-timestamp", ""))
    except ValueError:
        return None


def verify(
    raw: bytes,
    headers: Mapping[str, str],
    *,
    secrets: Mapping[str, str],
    tolerance_seconds: int,
    now: float | None = None,
) -> Verified:
    """``secrets``: provider name → whsec secret. The ``webhook-provider`` header names whose
    secret to use; without it every provider's secret is tried (each in constant time)."""
    check_shape(headers)
    msg_id = headers.get("webhook-id")
    signature = headers.get("webhook-signature")
    if not msg_id or not signature or headers.get("webhook-timestamp") is None:
        raise Rejected("unsigned", "Missing webhook-id, webhook-timestamp or webhook-signature.")
    timestamp = claimed_timestamp(headers)
    if timestamp is None:
        raise Rejected("malformed-headers", "webhook-timestamp is not an integer.")
    current = now if now is not None else time.time()
    if abs(current - timestamp) > tolerance_seconds:
        raise Rejected("stale", f"webhook-timestamp is more than {tolerance_seconds}s from now.")
    claimed = headers.get(PROVIDER_HEADER)
    if claimed is not None:
        if claimed not in secrets:
            raise Rejected("unknown-provider", "No registered provider has this name.")
        candidates = {claimed: secrets[claimed]}
    else:
        candidates = dict(secrets)
    lowered = {k.lower(): v for k, v in headers.items()}
    for provider, secret in candidates.items():
        if _signed_by(secret, raw, lowered):
            return Verified(provider, msg_id, timestamp, _parse(raw))
    raise Rejected("bad-signature", "The signature does not match the body.")


def check_shape(headers: Mapping[str, str]) -> None:
    """Refuse duplicated or oversized signature headers before any secret is looked at."""
    getlist = getattr(headers, "getlist", None)
    for name in SIGNATURE_HEADERS:
        if getlist is not None and len(getlist(name)) > 1:
            raise Rejected("duplicate-header", f"The {name} header appears more than once.")
    limits = {
        PROVIDER_HEADER: MAX_PROVIDER_LENGTH,
        "webhook-id": MAX_WEBHOOK_ID_LENGTH,
        "webhook-timestamp": 20,
        "webhook-signature": MAX_SIGNATURE_HEADER_LENGTH,
    }
    for name, limit in limits.items():
        if len(headers.get(name) or "") > limit:
            raise Rejected("malformed-headers", f"The {name} header is longer than {limit}.")


def _signed_by(secret: str, raw: bytes, headers: dict[str, str]) -> bool:
    try:
        Webhook(secret).verify(raw, headers, json_parse=False)
    except (WebhookVerificationError, ValueError, TypeError):
        # ValueError also covers a body that is not UTF-8 and malformed base64 signatures.
        return False
    return True


def _parse(raw: bytes) -> dict[str, Any]:
    try:
        event = json.loads(raw)
    except ValueError:
        raise Rejected("malformed-body", "The signed body is not JSON.") from None
    data = event.get("data") if isinstance(event, dict) else None
    if (
        not isinstance(event.get("type") if data is not None else None, str)
        or not isinstance(data, dict)
        or not isinstance(data.get("payment_id"), str)
    ):
        raise Rejected("malformed-body", "The event lacks type or data.payment_id.")
    if not _PAYMENT_ID.fullmatch(data["payment_id"]) or not _EVENT_TYPE.fullmatch(event["type"]):
        raise Rejected("malformed-body", "The event's type or data.payment_id is malformed.")
    if event["type"] in STATUS_OF and not _states_charge(data):
        # An outcome is compared with the payment before it is applied: it must say what it is.
        raise Rejected("malformed-body", "An outcome needs data.amount and data.currency.")
    return event


def _states_charge(data: dict[str, Any]) -> bool:
    amount, currency = data.get("amount"), data.get("currency")
    return (
        type(amount) is int
        and 0 < amount < 10**15
        and isinstance(currency, str)
        and bool(_CURRENCY.fullmatch(currency))
    )
