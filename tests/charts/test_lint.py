"""helm lint --strict (Helm's own linter through helm-python-sdk) and rendering with every
values set and with each component toggled off."""

import helm_python as helm
import pytest

from tests.charts.conftest import (
    COMPONENT_TOGGLES,
    SERVICE_CHARTS,
    UMBRELLA,
    VALUES_FILES,
    load_values,
)


def _problems(report: dict) -> list:
    # Strict: warnings count (severity 2 = warning, 3 = error).
    return [m for m in report["messages"] if m["severity"] >= 2] + report.get("errors", [])


@pytest.mark.parametrize("chart", [*SERVICE_CHARTS, "payplane-lib"])
def test_each_chart_lints_strict(built, chart):
    report = helm.lint(built / chart, strict=True, kube_version="v1.33.0")
    assert not _problems(report), report


@pytest.mark.parametrize("values", list(VALUES_FILES))
@pytest.mark.parametrize("kube_version", ["v1.33.0", "v1.37.0"])
def test_umbrella_lints_strict_with_each_values_set(built, values, kube_version):
    report = helm.lint(
        built / UMBRELLA,
        load_values(VALUES_FILES[values]),
        strict=True,
        with_subcharts=True,
        kube_version=kube_version,
    )
    assert not _problems(report), report


def _deployments(docs) -> set[str]:
    return {d["metadata"]["name"] for d in docs if d["kind"] == "Deployment"}


def test_default_render_has_every_component(renderer):
    deployments = _deployments(renderer.docs())
    expected = {"envoy" if c == "ingress" else c for c in COMPONENT_TOGGLES}
    assert deployments == expected


@pytest.mark.parametrize("component", COMPONENT_TOGGLES)
def test_each_component_toggles_off(renderer, component):
    docs = renderer.docs(values={component: {"enabled": False}})
    gone = "envoy" if component == "ingress" else component
    assert gone not in _deployments(docs)
    assert len(_deployments(docs)) == len(COMPONENT_TOGGLES) - 1


@pytest.mark.parametrize(
    ("toggle", "kind"),
    [
        ({"redis": {"enabled": False}}, "StatefulSet"),
        ({"rabbitmq": {"enabled": False}}, "RabbitmqCluster"),
        ({"global": {"monitoring": {"enabled": False}}}, "ServiceMonitor"),
        ({"global": {"databasePooler": {"enabled": True}}}, None),
        ({"networkPolicy": {"defaultDeny": False}}, None),
        ({"platformSecret": {"create": False}}, None),
    ],
)
def test_platform_toggles(renderer, toggle, kind):
    docs = renderer.docs(values=toggle)
    assert docs
    if kind is not None:
        assert kind not in {d["kind"] for d in docs}


@pytest.mark.parametrize("chart", SERVICE_CHARTS)
def test_each_service_chart_renders_alone(renderer, chart):
    docs = renderer.docs(chart)
    assert any(d["kind"] == "Deployment" for d in docs)
