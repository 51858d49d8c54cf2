"""Every rendered object is valid: built-in kinds strictly against Kubernetes 1.33 and 1.37
(kubernetes-validate), custom resources against their operators' CRD schemas (tests/charts/schemas,
copied from upstream) and payplane's own CRDs (k8s/crds)."""

from functools import cache
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.charts.conftest import REPO

SCHEMAS = Path(__file__).parent / "schemas"
CRD_FILES = [
    *sorted(SCHEMAS.glob("*.crds.yaml")),
    *sorted((REPO / "k8s" / "crds").glob("*.yaml")),
]
KUBERNETES_VERSIONS = ["1.33.0", "1.37.0"]


@cache
def crd_schemas() -> dict[tuple[str, str], dict]:
    """(apiVersion, kind) → openAPIV3Schema of every CRD we know."""
    found = {}
    for path in CRD_FILES:
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            spec = crd["spec"]
            for version in spec["versions"]:
                api_version = f"{spec['group']}/{version['name']}"
                found[(api_version, spec["names"]["kind"])] = version["schema"]["openAPIV3Schema"]
    return found


def _strict(schema: dict) -> dict:
    """Structural CRD schemas prune unknown fields; we refuse them instead (a typo in a chart
    would otherwise vanish silently on the API server)."""
    if isinstance(schema, dict):
        schema = {k: _strict(v) for k, v in schema.items()}
        if (
            schema.get("type") == "object"
            and "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
    elif isinstance(schema, list):
        schema = [_strict(v) for v in schema]
    return schema


def _is_builtin(doc: dict) -> bool:
    return (doc["apiVersion"], doc["kind"]) not in crd_schemas()


def _name(doc: dict) -> str:
    return f"{doc['kind']}/{doc['metadata']['name']}"


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_builtin_objects_validate_strictly(profile, version):
    _, docs = profile
    builtin = [d for d in docs if _is_builtin(d)]
    assert builtin
    for doc in builtin:
        if doc["apiVersion"].endswith(("cnpg.io/v1", "rabbitmq.com/v1beta1", "coreos.com/v1")):
            pytest.fail(f"no CRD schema for {_name(doc)}")
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{_name(doc)} invalid for {version}: {exc.message} at {list(exc.path)}")


def test_custom_resources_match_their_crds(profile):
    _, docs = profile
    custom = [d for d in docs if not _is_builtin(d)]
    assert custom
    for doc in custom:
        schema = _strict(crd_schemas()[(doc["apiVersion"], doc["kind"])])
        errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(doc), key=str)
        assert not errors, f"{_name(doc)}: " + "; ".join(
            f"{e.message} at {list(e.path)}" for e in errors[:5]
        )


def test_every_custom_kind_has_a_schema(renderer):
    """Monitoring on, pooler and backups on: every custom kind the charts can render is known."""
    docs = renderer.docs(values={"global": {"databasePooler": {"enabled": True}}})
    kinds = {(d["apiVersion"], d["kind"]) for d in docs if not _is_builtin(d)}
    assert {k for _, k in kinds} >= {
        "Cluster",
        "Pooler",
        "RabbitmqCluster",
        "ServiceMonitor",
        "PodMonitor",
    }


def test_kind_provider_examples_match_the_crds_and_the_simulator_secrets(renderer):
    secrets = {
        (d["metadata"]["name"], key)
        for d in renderer.docs()
        if d["kind"] == "Secret"
        for key in d["data"]
    }
    for doc in yaml.safe_load_all((REPO / "k8s" / "kind" / "simulators.yaml").read_text()):
        schema = _strict(crd_schemas()[(doc["apiVersion"], doc["kind"])])
        assert not list(jsonschema.Draft7Validator(schema).iter_errors(doc))
        for ref in (doc["spec"]["apiKeySecretRef"], doc["spec"]["webhookSecretRef"]):
            assert (ref["name"], ref["key"]) in secrets
