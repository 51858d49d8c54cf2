"""The CRDs are real apiextensions.k8s.io/v1 objects, the examples satisfy them, and bad
resources are refused by the schema with a message that says what is wrong."""

import copy
from pathlib import Path

import celpy
import jsonschema
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CRDS = sorted((ROOT / "k8s" / "crds").glob("*.yaml"))
EXAMPLES = sorted((ROOT / "k8s" / "examples").glob("*.yaml"))


def documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def crds() -> dict[str, dict]:
    return {
        doc["spec"]["names"]["kind"]: doc
        for path in CRDS
        for doc in documents(path)
        if doc["spec"]["group"] == "payplane.io"
    }


def strict(schema: dict) -> dict:
    """What the API server does with field validation Strict (kubectl's default): an unknown
    field is an error. In the CRD itself `additionalProperties` may not sit beside
    `properties` (structural schema), so it is added here, exactly where the server applies it."""
    schema = copy.deepcopy(schema)

    def walk(node: dict) -> None:
        if "properties" in node and not node.get("x-kubernetes-preserve-unknown-fields"):
            node.setdefault("additionalProperties", False)
        for child in node.get("properties", {}).values():
            walk(child)
        if isinstance(node.get("items"), dict):
            walk(node["items"])

    walk(schema)
    schema["properties"]["metadata"] = {"type": "object"}
    return schema


def validator(kind: str) -> jsonschema.Draft4Validator:
    schema = crds()[kind]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return jsonschema.Draft4Validator(
        strict(schema), format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER
    )


def cel_errors(schema: dict, value, path: str = "") -> list[str]:
    """The CRD's x-kubernetes-validations, evaluated as the API server does: `self` is the
    node the rule sits on, and a rule only runs where its node is present."""
    found = []
    env = celpy.Environment()
    for rule in schema.get("x-kubernetes-validations", []):
        program = env.program(env.compile(rule["rule"]))
        if not program.evaluate({"self": celpy.json_to_cel(value)}):
            found.append(f"{path or '<root>'}: {rule['message']}")
    if isinstance(value, dict):
        for name, child in schema.get("properties", {}).items():
            if name in value:
                found += cel_errors(child, value[name], f"{path}.{name}".lstrip("."))
    return found


def errors(resource: dict) -> list[str]:
    """Schema errors first; CEL rules run only on a resource the schema accepts (as the
    API server does: rules assume the types the schema guarantees)."""
    found = validator(resource["kind"]).iter_errors(resource)
    messages = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in found]
    if messages:
        return messages
    schema = crds()[resource["kind"]]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return cel_errors(schema, resource)


@pytest.mark.parametrize("path", CRDS, ids=lambda p: p.name)
def test_every_crd_is_a_valid_apiextensions_v1_object(path):
    for doc in documents(path):
        assert doc["apiVersion"] == "apiextensions.k8s.io/v1"
        kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)


def test_payplane_crds_have_status_printer_columns_and_short_names():
    found = crds()
    assert set(found) == {"Plan", "Merchant", "Provider"}
    assert found["Plan"]["spec"]["scope"] == "Cluster"
    for kind, crd in found.items():
        version = crd["spec"]["versions"][0]
        assert version["name"] == "v1alpha1" and version["subresources"] == {"status": {}}
        assert crd["spec"]["names"]["shortNames"], kind
    columns = {
        kind: [c["name"] for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]]
        for kind, crd in found.items()
    }
    assert columns["Merchant"] == ["Ready", "Plan", "Merchant ID", "Age"]
    assert columns["Provider"][:4] == ["Ready", "Priority", "Currencies", "Endpoint"]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_satisfies_its_crd(path):
    docs = documents(path)
    assert docs
    for doc in docs:
        assert doc["apiVersion"] == "payplane.io/v1alpha1"
        assert errors(doc) == []


def test_plans_example_ships_the_three_plans():
    names = [doc["metadata"]["name"] for doc in documents(ROOT / "k8s/examples/plans.yaml")]
    assert names == ["starter", "standard", "enterprise"]


def example(name: str) -> dict:
    return documents(ROOT / "k8s" / "examples" / name)[0]


def merchant(**spec) -> dict:
    doc = example("merchant.yaml")
    doc["spec"].update(spec)
    return doc


def provider(**spec) -> dict:
    doc = example("provider.yaml")
    doc["spec"].update(spec)
    return doc


def without(doc: dict, field: str) -> dict:
    del doc["spec"][field]
    return doc


BAD = [
    ("bad webhook URL", merchant(webhookUrl="ftp://shop.example.com/hook"), "webhookUrl"),
    ("URL with spaces", merchant(webhookUrl="https://shop example.com/"), "webhookUrl"),
    (
        "negative rate",
        merchant(rateLimit={"requestsPerSecond": -5, "burst": 10}),
        "rateLimit.requestsPerSecond: -5 is less than or equal to the minimum of 0",
    ),
    ("zero burst", merchant(rateLimit={"requestsPerSecond": 1, "burst": 0}), "burst"),
    (
        "burst below one second of requests",
        merchant(rateLimit={"requestsPerSecond": 50, "burst": 10}),
        "rateLimit: burst must hold at least one second of requests",
    ),
    ("name too long", merchant() | {"metadata": {"name": "m" * 70}}, "at most 63 characters"),
    ("negative quota", merchant(quota={"paymentsPerMonth": -1}), "paymentsPerMonth"),
    ("unknown field", merchant(webhookURL="https://x.example"), "'webhookURL' was unexpected"),
    ("missing plan", without(merchant(), "plan"), "'plan' is a required property"),
    ("plan not a name", merchant(plan="Gold Plan"), "plan"),
    ("grace too long", merchant(credentials={"rotationGraceSeconds": 10**9}), "rotationGrace"),
    ("bad provider URL", provider(endpoint="not a url"), "endpoint"),
    ("bad currency", provider(currencies=["euro"]), "currencies.0"),
    (
        "one Secret key for both secrets",
        provider(webhookSecretRef={"name": "acme-psp-credentials", "key": "api_key"}),
        "must name different Secret keys",
    ),
    (
        "circuit opens shorter than a request",
        provider(timeoutMs=5000, circuitBreaker={"failureThreshold": 5, "openSeconds": 1}),
        "must last at least one request timeout",
    ),
    ("negative priority", provider(priority=-1), "priority"),
    ("secret in spec", provider(apiKey="sk_live_123"), "'apiKey' was unexpected"),
    ("missing secret ref", without(provider(), "webhookSecretRef"), "'webhookSecretRef' is a"),
    (
        "secret ref without key",
        provider(apiKeySecretRef={"name": "acme-psp-credentials"}),
        "'key' is a required property",
    ),
]


@pytest.mark.parametrize(("case", "resource", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_resources_are_refused_with_a_clear_message(case, resource, message):
    found = errors(resource)
    assert found, f"{case} was accepted"
    assert any(message in line for line in found), found


def test_operator_rbac_is_valid_and_grants_no_wildcard():
    docs = documents(ROOT / "k8s" / "operator" / "rbac.yaml")
    for doc in docs:
        kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)
    rules = [rule for doc in docs for rule in doc.get("rules", [])]
    assert rules
    for rule in rules:
        assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"], rule
        assert not {"delete", "deletecollection", "update", "escalate", "bind"} & set(rule["verbs"])
