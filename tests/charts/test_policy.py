"""Policies over the rendered manifests (default, kind and prod values): hardened pods, network
isolation, no mutable images, no literal secrets, PDBs, Services that select something."""

import re

import pytest
import yaml
from payplane_core.internal_auth import public_key

from tests.charts.conftest import CHARTS, NAMESPACE, RELEASE, UMBRELLA, rendered_secrets

WORKLOADS = ("Deployment", "StatefulSet")
SECRETISH = re.compile(r"SECRET|PASSWORD|TOKEN|_KEY(S)?$|AUTH", re.IGNORECASE)
# The one pod that needs the Kubernetes API.
API_CLIENTS = {"operator"}


def workloads(docs):
    return [d for d in docs if d["kind"] in WORKLOADS]


def pod_labels(workload) -> dict:
    return workload["spec"]["template"]["metadata"]["labels"]


def containers(workload, *, init=True):
    spec = workload["spec"]["template"]["spec"]
    return spec["containers"] + (spec.get("initContainers", []) if init else [])


def _selects(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items()) and not (
        selector.get("matchExpressions")
    )


def test_every_container_is_hardened(profile):
    _, docs = profile
    for workload in workloads(docs):
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        name = workload["metadata"]["name"]
        assert pod["automountServiceAccountToken"] is (name in API_CLIENTS), name
        for container in containers(workload):
            where = f"{name}/{container['name']}"
            context = container["securityContext"]
            assert context["runAsNonRoot"] is True, where
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["capabilities"]["drop"] == ["ALL"], where
            assert "add" not in context["capabilities"], where
            assert context["seccompProfile"]["type"] == "RuntimeDefault", where
            for bound in ("requests", "limits"):
                assert set(container["resources"][bound]) >= {"cpu", "memory"}, where


def test_every_long_running_container_has_probes(profile):
    _, docs = profile
    for workload in workloads(docs):
        for container in containers(workload, init=False):
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                assert probe in container, f"{workload['metadata']['name']} lacks {probe}"


def test_services_probe_health_and_ready(profile):
    _, docs = profile
    for workload in workloads(docs):
        for container in containers(workload, init=False):
            live = container["livenessProbe"].get("httpGet", {}).get("path")
            ready = container["readinessProbe"].get("httpGet", {}).get("path")
            if workload["metadata"]["name"] not in ("envoy", "operator", "redis"):
                assert (live, ready) == ("/health", "/ready"), workload["metadata"]["name"]


def test_deployments_spread_over_nodes(profile):
    _, docs = profile
    for workload in workloads(docs):
        if workload["kind"] == "Deployment":
            spread = workload["spec"]["template"]["spec"]["topologySpreadConstraints"]
            assert {c["topologyKey"] for c in spread} >= {"kubernetes.io/hostname"}


def test_network_policies_default_deny_and_select_every_pod(profile):
    _, docs = profile
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    deny = [p for p in policies if p["spec"]["podSelector"] == {}]
    assert len(deny) == 1 and set(deny[0]["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny[0]["spec"] and "egress" not in deny[0]["spec"]
    specific = [p for p in policies if p["spec"]["podSelector"]]
    for workload in workloads(docs):
        chosen = [p for p in specific if _selects(p["spec"]["podSelector"], pod_labels(workload))]
        assert len(chosen) == 1, f"{workload['metadata']['name']}: {len(chosen)} policies"
        assert set(chosen[0]["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    for cluster in (d for d in docs if d["kind"] == "Cluster"):
        labels = {"cnpg.io/cluster": cluster["metadata"]["name"]}
        assert any(_selects(p["spec"]["podSelector"], labels) for p in specific)


def test_only_the_ingress_accepts_traffic_from_outside(profile):
    _, docs = profile
    for policy in (d for d in docs if d["kind"] == "NetworkPolicy"):
        for rule in policy["spec"].get("ingress", []):
            blocks = [peer for peer in rule.get("from", []) if "ipBlock" in peer]
            if blocks:
                assert policy["metadata"]["name"] == "envoy"
                assert [p["port"] for p in rule["ports"]] == [8080]


def test_envoy_admin_is_never_exposed(profile):
    _, docs = profile
    for doc in docs:
        text = yaml.safe_dump(doc)
        if doc["kind"] in ("Service", "NetworkPolicy") or doc["kind"] in WORKLOADS:
            assert "9901" not in text, doc["metadata"]["name"]


def test_no_mutable_image_tags(profile):
    _, docs = profile
    for workload in workloads(docs):
        for container in containers(workload):
            image = container["image"]
            assert "@sha256:" in image or re.search(r":[\w][\w.-]*$", image.split("/")[-1]), image
            assert not image.endswith(":latest"), image


def test_no_literal_secret_in_any_env(profile):
    _, docs = profile
    for workload in workloads(docs):
        for container in containers(workload):
            for env in container.get("env", []):
                if SECRETISH.search(env["name"]) and "value" in env:
                    # Only assembled from Secret references ($(VAR)) and short literals.
                    literal = re.sub(r"\$\(\w+\)", "", env["value"])
                    assert not re.search(r"[\w+/=-]{16,}", literal), env["name"]
                value = str(env.get("value", ""))
                # A URL may carry credentials only through $(VAR) expansion of Secret refs.
                if "@" in value and "://" in value:
                    assert re.search(r"://\$\(\w+\):\$\(\w+\)@", value), env["name"]


def test_generated_secrets_are_random_and_from_no_values_file(renderer):
    """Two installs get different secrets (generated, not defaults), and no secret value is
    written in any values file of the repository."""
    first = [d for d in renderer.docs() if d["kind"] == "Secret"]
    second_install = {"global": {"otel": {"endpoint": ""}}}  # same meaning, another cache key
    again = [d for d in renderer.docs(values=second_install) if d["kind"] == "Secret"]
    assert first and len(first) == len(again)
    values_text = "\n".join(p.read_text() for p in CHARTS.glob("*/values*.yaml"))
    for one, two in zip(first, again, strict=True):
        assert one["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        for key, value in one["data"].items():
            assert value != two["data"][key], f"{one['metadata']['name']}.{key} is fixed"
            assert value not in values_text


def test_pdb_for_every_multi_replica_workload(profile):
    _, docs = profile
    pdbs = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    scaled = {
        d["spec"]["scaleTargetRef"]["name"] for d in docs if d["kind"] == "HorizontalPodAutoscaler"
    }
    for workload in workloads(docs):
        name = workload["metadata"]["name"]
        if workload["spec"].get("replicas", 1) > 1 or name in scaled:
            assert any(_selects(p["spec"]["selector"], pod_labels(workload)) for p in pdbs), name


def test_every_service_selects_a_workload(profile):
    _, docs = profile
    pods = [pod_labels(w) for w in workloads(docs)]
    for service in (d for d in docs if d["kind"] == "Service"):
        selector = service["spec"]["selector"]
        assert selector and any(
            all(labels.get(k) == v for k, v in selector.items()) for labels in pods
        ), service["metadata"]["name"]
        for port in service["spec"]["ports"]:
            assert isinstance(port["targetPort"], str), "targetPort by name"


def test_release_namespace_is_not_hard_coded(renderer):
    text = "\n".join(renderer.raw().values())
    assert f"namespace: {NAMESPACE}" in text  # only RBAC subjects name it
    assert RELEASE and UMBRELLA


@pytest.mark.parametrize("component", ["payments", "relay"])
def test_database_urls_come_from_the_cnpg_app_secret(profile, component):
    _, docs = profile
    deployment = next(
        d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == component
    )
    env = {e["name"]: e for e in containers(deployment, init=False)[0]["env"]}
    name = "DATABASE_URL" if component == "payments" else "OUTBOX_DATABASE_URL"
    if "valueFrom" in env[name]:
        assert env[name]["valueFrom"]["secretKeyRef"] == {"name": "payments-db-app", "key": "uri"}
    else:  # through the pooler: the password still comes from the app Secret
        assert "payments-db-pooler-rw" in env[name]["value"]
        assert env[f"_{name}_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "payments-db-app"


@pytest.mark.parametrize("pooler", [False, True])
def test_the_relay_listens_on_the_primary_never_through_the_pooler(renderer, pooler):
    """PgBouncer's transaction mode cannot carry LISTEN: the relay's listener connects to the
    database directly, whether or not its claims go through the Pooler."""
    docs = renderer.docs(values={"global": {"databasePooler": {"enabled": pooler}}})
    relay = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "relay")
    env = {e["name"]: e for e in containers(relay, init=False)[0]["env"]}
    direct = {"secretKeyRef": {"name": "payments-db-app", "key": "uri"}}
    assert env["RELAY_LISTEN_DATABASE_URL"]["valueFrom"] == direct
    assert ("valueFrom" in env["OUTBOX_DATABASE_URL"]) is not pooler


def test_internal_key_pairs_are_valid_ed25519_pairs(renderer):
    """The chart derives each public key in a template; Python must derive the same one."""
    keys = {
        k: v
        for (name, k), v in rendered_secrets(renderer.docs()).items()
        if name == "payplane-internal-keys"
    }
    callers = {k.rsplit(".", 1)[0] for k in keys}
    assert callers >= {"gateway", "payments", "providers", "webhooks", "notifier", "operator"}
    for caller in callers:
        assert public_key(keys[f"{caller}.key"]) == keys[f"{caller}.pub"], caller


def _collector_rules(policy: dict, port: int) -> list[dict]:
    """Egress rules that reach the collector's port (anywhere: it may run outside the cluster)."""
    return [
        rule
        for rule in policy["spec"].get("egress", [])
        if "to" not in rule and {"port": port, "protocol": "TCP"} in rule["ports"]
    ]


@pytest.mark.parametrize(("endpoint", "port"), [("http://otel.monitoring:4318", 4318), ("", 4318)])
def test_every_span_exporter_may_reach_the_collector_and_only_with_an_endpoint(
    renderer, endpoint, port
):
    docs = renderer.docs(values={"global": {"otel": {"endpoint": endpoint}}})
    policies = [d for d in docs if d["kind"] == "NetworkPolicy" and d["spec"]["podSelector"]]
    reaching = set()
    for workload in workloads(docs):
        name = workload["metadata"]["name"]
        env = {e["name"] for c in containers(workload, init=False) for e in c.get("env", [])}
        [policy] = [p for p in policies if _selects(p["spec"]["podSelector"], pod_labels(workload))]
        allowed = bool(_collector_rules(policy, port))
        if allowed:
            reaching.add(name)
        # The operator is given the endpoint only to render Envoy's tracer: it exports nothing.
        exports = "OTEL_EXPORTER_OTLP_ENDPOINT" in env and name != "operator"
        assert allowed == (exports or (bool(endpoint) and name == "envoy")), name
    if endpoint:
        # Every service and worker, and Envoy (its own tracer).
        expected = {"payments", "merchants", "gateway", "providers", "webhooks", "relay"}
        assert expected | {"notifier", "envoy"} <= reaching
    else:
        assert reaching == set()
