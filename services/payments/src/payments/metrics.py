"""Business metrics of the payments service (bounded labels: status, provider, never an id)."""

from prometheus_client import Counter

from payments.state import TERMINAL, Status

CREATED = Counter("payplane_payments_created_total", "Payments created (committed)")
FINISHED = Counter(
    "payplane_payments_finished_total",
    "Payments reaching a final status, by status and provider",
    ["status", "provider"],
)


def record_change(*, status: str, provider: str | None, changed: bool) -> None:
    """After the commit: count a payment that has just reached a final status."""
    if changed and Status(status) in TERMINAL:
        FINISHED.labels(status, provider or "none").inc()


REFUSED_REPORTS = Counter(
    "payplane_payment_reports_refused_total",
    "Provider reports refused without being applied (wrong provider, amount or currency)",
    ["reason"],
)
