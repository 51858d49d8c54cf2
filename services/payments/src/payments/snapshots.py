"""What this process last wrote of each payment still under way, so its next status change needs
no read first.

A change is a compare-and-set: it applies only if the payment still has the status and provider
it was checked against (``service._CHANGE``). A snapshot can therefore only make a change fail
and be read again, never apply one wrongly: another replica, the reconciler or an operator may
have moved the payment meanwhile, and then the write finds nothing to change. The rest of a
payment (amount, currency, merchant, description, metadata, creation time) never changes once
it is written. What is decided without a write (a repeated status, a refusal) is decided on a
fresh read only (``service.record_event``).

A payment in a final status is not kept (nothing follows it); the oldest goes when ``capacity``
is reached. Each ``take`` hands out a payment of its own, built from the kept values, so no two
requests ever share one.
"""

from typing import Any

from payments.models import Payment
from payments.state import TERMINAL, Status

_FIELDS = ("id", "merchant_id", "amount", "currency", "status", "provider", "description")
_FIELDS += ("metadata_", "created_at", "updated_at")


class Snapshots:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._kept: dict[str, dict[str, Any]] = {}  # insertion order: the oldest first

    def __len__(self) -> int:
        return len(self._kept)

    def keep(self, payment: Payment) -> None:
        self._kept.pop(payment.id, None)
        if self.capacity <= 0 or Status(payment.status) in TERMINAL:
            return
        self._kept[payment.id] = {name: getattr(payment, name) for name in _FIELDS}
        if len(self._kept) > self.capacity:
            del self._kept[next(iter(self._kept))]

    def take(self, payment_id: str) -> Payment | None:
        """The payment as last written here (and forgotten: the change writes it again)."""
        values = self._kept.pop(payment_id, None)
        return Payment(**values) if values is not None else None
