"""The umbrella's monitoring slots: every charts/payplane/rules/*.yaml becomes a PrometheusRule
and every charts/payplane/dashboards/*.json a Grafana dashboard ConfigMap, zero files or many."""

import json
import shutil

import helm_python as helm
import jsonschema
import pytest
import yaml

from tests.charts.conftest import CHARTS, NAMESPACE, RELEASE, build_charts, docs_of
from tests.charts.test_validate import _strict, crd_schemas

RULES = {
    "groups": [
        {
            "name": "payplane.test",
            "rules": [
                {
                    "alert": "PaymentsDown",
                    "expr": 'up{job="payments"} == 0',
                    "for": "1m",
                    "labels": {"severity": "page"},
                    "annotations": {"summary": "payments is down"},
                },
                {
                    "record": "payplane:requests:rate5m",
                    "expr": "sum(rate(http_requests_total[5m]))",
                },
            ],
        }
    ]
}
DASHBOARD = {"title": "payplane test", "uid": "payplane-test", "panels": []}


def _render(tmp_path, rules: int, dashboards: int) -> list[dict]:
    source = tmp_path / "source"
    shutil.copytree(CHARTS, source, ignore=shutil.ignore_patterns("charts", "Chart.lock"))
    for folder in ("rules", "dashboards"):
        for old in (source / "payplane" / folder).glob("*.*"):
            old.unlink()
    for n in range(rules):
        (source / "payplane" / "rules" / f"test_rules_{n}.yaml").write_text(yaml.safe_dump(RULES))
    for n in range(dashboards):
        (source / "payplane" / "dashboards" / f"test-{n}.json").write_text(json.dumps(DASHBOARD))
    built = build_charts(tmp_path / "built", source)
    rendered = helm.Chart.load(built / "payplane").render(name=RELEASE, namespace=NAMESPACE)
    return docs_of(rendered)


@pytest.mark.parametrize(("rules", "dashboards"), [(0, 0), (2, 3)])
def test_rules_and_dashboards_are_wrapped(tmp_path, rules, dashboards):
    docs = _render(tmp_path, rules, dashboards)
    prometheus_rules = [d for d in docs if d["kind"] == "PrometheusRule"]
    boards = [
        d
        for d in docs
        if d["kind"] == "ConfigMap" and d["metadata"]["labels"].get("grafana_dashboard") == "1"
    ]
    assert (len(prometheus_rules), len(boards)) == (rules, dashboards)
    schema = _strict(crd_schemas()[("monitoring.coreos.com/v1", "PrometheusRule")])
    for rule in prometheus_rules:
        clean = {k: v for k, v in rule.items() if k != "__source__"}
        assert not list(jsonschema.Draft7Validator(schema).iter_errors(clean))
        assert rule["spec"] == RULES
        assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    for board in boards:
        (content,) = board["data"].values()
        assert json.loads(content) == DASHBOARD


def test_the_repository_files_render(renderer):
    """Whatever the observability work has put in the folders renders and is valid."""
    on_disk = len(list((CHARTS / "payplane" / "rules").glob("*.yaml")))
    docs = renderer.docs()
    assert len([d for d in docs if d["kind"] == "PrometheusRule"]) == on_disk


def test_runbook_links_point_where_the_operator_keeps_runbooks(renderer):
    base = "https://wiki.example.com/payplane/runbooks"
    values = {"global": {"monitoring": {"runbookBaseUrl": base + "/"}}}

    def links(docs: list[dict]) -> list[str]:
        return [
            rule["annotations"]["runbook_url"]
            for doc in docs
            if doc["kind"] == "PrometheusRule"
            for group in doc["spec"]["groups"]
            for rule in group["rules"]
            if "alert" in rule
        ]

    default, moved = links(renderer.docs()), links(renderer.docs(values=values))
    assert default and all(url.startswith("https://github.com/payplane/") for url in default)
    assert [url.removeprefix(base) for url in moved] == [
        url.split("/docs/runbooks", 1)[1] for url in default
    ]
