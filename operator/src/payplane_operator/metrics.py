"""Prometheus metrics of the operator (bounded labels: kind and outcome, never a name)."""

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Histogram

RECONCILES = Counter(
    "payplane_operator_reconciles_total",
    "Reconciles of payplane resources, by kind and outcome.",
    ["kind", "outcome"],
)
DURATION = Histogram(
    "payplane_operator_reconcile_duration_seconds",
    "Time to reconcile one resource, by kind.",
    ["kind"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
OUTCOMES = ("success", "permanent", "retry", "error")


class Outcome:
    value = "success"


@contextmanager
def observed(kind: str) -> Iterator[Outcome]:
    """Count and time one reconcile; the body sets ``outcome.value`` when it is not a success
    (an exception that escapes counts as ``error``)."""
    outcome = Outcome()
    started = time.perf_counter()
    try:
        yield outcome
    except BaseException:
        if outcome.value == "success":
            outcome.value = "error"
        raise
    finally:
        DURATION.labels(kind).observe(time.perf_counter() - started)
        RECONCILES.labels(kind, outcome.value).inc()
