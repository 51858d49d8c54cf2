"""A real Prometheus scrapes the test platform: after real traffic every dashboard query
returns data, every rule evaluates cleanly, and label cardinality does not grow with merchants."""

import re

import httpx
import pytest
from payplane_cli.stack import PROCESSES
from prometheus_client.parser import text_string_to_metric_families

from tests.observability import grafana
from tests.observability.conftest import pay, wait_for

pytestmark = pytest.mark.e2e
# The operator reconciles Kubernetes resources; the local stack runs no operator process, so
# its dashboard is proven against a Prometheus of its own in tests/operator/test_dashboard.py.
NOT_IN_LOCAL_STACK = {"operator"}
ID_LIKE = re.compile(r"\b(mer|pay|key|evt|del|chg|msg|req)_[A-Za-z0-9]{6,}")


def test_every_dashboard_query_returns_series(traffic, prometheus):
    wanted = [
        (name, title, expr)
        for name, document in grafana.documents().items()
        if name not in NOT_IN_LOCAL_STACK
        for title, expr in grafana.queries(document)
    ]
    assert len(wanted) > 40

    def empty() -> list:
        return [(name, title, expr) for name, title, expr in wanted if not prometheus(expr)]

    try:
        wait_for(lambda: not empty(), within=60, what="a series for every query")
    except TimeoutError:
        pytest.fail(f"queries without series: {empty()}")


def test_every_rule_evaluates_without_error(traffic, stack):
    def rules() -> list[dict]:
        groups = httpx.get(stack.url("prometheus") + "/api/v1/rules", timeout=10).json()
        return [rule for group in groups["data"]["groups"] for rule in group["rules"]]

    evaluated = wait_for(
        lambda: (found := rules()) and all(r["health"] != "unknown" for r in found) and found,
        within=30,
        what="every rule evaluated",
    )
    assert len(evaluated) >= 20
    assert [(r["name"], r.get("lastError")) for r in evaluated if r["health"] != "ok"] == []


def scrape_all(stack) -> set[tuple]:
    """Every payplane_* series of every process, straight from their /metrics."""
    found = set()
    for name, process in PROCESSES.items():
        if process.port is None or name in ("envoy", "prometheus"):
            continue
        text = httpx.get(stack.url(name) + "/metrics", timeout=10).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name.startswith("payplane_"):
                    found.add((name, sample.name, tuple(sorted(sample.labels.items()))))
    return found


def test_label_cardinality_stays_bounded_with_many_merchants(
    traffic, shop, merchants_endpoint, stack
):
    def round_of(merchants: int) -> set[tuple]:
        paid = []
        for _ in range(merchants):
            client = shop()
            paid.append(pay(client))
            assert client.get(f"/api/v1/payments/{paid[-1]}/show").status_code == 200
        for payment_id in paid:
            merchants_endpoint.wait_final(payment_id)
        return scrape_all(stack)

    after_some = round_of(4)
    after_many = round_of(12)
    values = {value for _, _, labels in after_many for _, value in labels}
    assert not [v for v in values if ID_LIKE.search(v)], "an id in a label"
    routes = {v for _, _, labels in after_many for k, v in labels if k == "route"}
    # Route templates (``/api/v1/payments/{payment_id}/show``) or "unmatched", never a raw path.
    assert all(r == "unmatched" or r.startswith("/") for r in routes)
    assert not [r for r in routes if ID_LIKE.search(r)]
    # Three times the merchants, not one series more.
    assert after_many - after_some == set()
