"""skaffold.yaml against the skaffold v4beta14 JSON schema, and its images against the charts:
each artifact is a chart's image repository and is set on exactly those components."""

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.charts.conftest import CHARTS, REPO, SERVICE_CHARTS

SKAFFOLD = yaml.safe_load((REPO / "skaffold.yaml").read_text())
SCHEMA = json.loads((Path(__file__).parent / "schemas" / "skaffold-v4beta14.json").read_text())
RELEASE = SKAFFOLD["deploy"]["helm"]["releases"][0]


def test_skaffold_yaml_matches_the_v4beta14_schema():
    assert SKAFFOLD["apiVersion"] == "skaffold/v4beta14"
    errors = list(jsonschema.Draft7Validator(SCHEMA).iter_errors(SKAFFOLD))
    assert not errors, [f"{e.message} at {list(e.path)}" for e in errors[:5]]


def _chart_images() -> dict[str, str]:
    """component → image repository, from every service chart's values (and aliases)."""
    images = {}
    for chart in SERVICE_CHARTS:
        values = yaml.safe_load((CHARTS / chart / "values.yaml").read_text())
        images[values["component"]] = values["image"]["repository"]
    umbrella = yaml.safe_load((CHARTS / "payplane" / "values.yaml").read_text())
    images["sim-b"] = images["sim-a"] if "sim-b" in umbrella else None
    return {k: v for k, v in images.items() if v}


def test_every_artifact_is_a_chart_image_and_every_chart_image_is_built():
    built = {a["image"] for a in SKAFFOLD["build"]["artifacts"]}
    wanted = {image for image in _chart_images().values() if image.startswith("payplane/")}
    assert built == wanted


@pytest.mark.parametrize("artifact", SKAFFOLD["build"]["artifacts"], ids=lambda a: a["image"])
def test_artifacts_build_from_the_dockerfile_with_a_workspace_package(artifact):
    docker = artifact["docker"]
    assert docker["dockerfile"] == "services/Dockerfile"
    package = docker["buildArgs"]["PACKAGE"]
    projects = [*REPO.glob("*/pyproject.toml"), *REPO.glob("*/*/pyproject.toml")]
    members = [p for p in projects if f'name = "{package}"' in p.read_text()]
    assert len(members) == 1, f"{package} is not a workspace package"


def test_each_component_runs_the_image_built_for_it():
    templates = RELEASE["setValueTemplates"]
    for component, image in _chart_images().items():
        if not image.startswith("payplane/"):
            continue
        variable = re.sub(r"[^A-Za-z0-9]", "_", image)
        assert templates[f"{component}.image.repository"] == f"{{{{.IMAGE_REPO_{variable}}}}}"
        assert templates[f"{component}.image.tag"] == f"{{{{.IMAGE_TAG_{variable}}}}}"


def test_profiles_use_the_values_files_that_exist():
    for profile in SKAFFOLD["profiles"]:
        for patch in profile.get("patches", []):
            assert (REPO / patch["value"]).exists()
    assert {p["name"] for p in SKAFFOLD["profiles"]} == {"kind", "prod-like"}
    forward = SKAFFOLD["portForward"][0]
    assert (forward["resourceName"], forward["localPort"]) == ("envoy", 8080)


def test_kind_maps_the_ingress_node_port_to_8080():
    kind = yaml.safe_load((REPO / "kind-config.yaml").read_text())
    mapping = kind["nodes"][0]["extraPortMappings"][0]
    values = yaml.safe_load((CHARTS / "payplane" / "values-kind.yaml").read_text())
    assert mapping["containerPort"] == values["ingress"]["service"]["nodePort"]
    assert mapping["hostPort"] == 8080
