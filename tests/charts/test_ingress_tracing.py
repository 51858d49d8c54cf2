"""Envoy's tracer on Kubernetes: with ``global.otel.endpoint`` the chart's routing has Envoy's
OpenTelemetry tracer, recording ``global.otel.sampleRatio`` of the traces it starts, and the
collector's cluster (exactly what the operator renders from the same endpoint and ratio, so its
rewrites keep them), Envoy may reach the collector, and the operator is told the endpoint and
the ratio; unset, none of it."""

import json

import helm_python as helm
import pytest
from payplane_ingress import files, kubernetes, render
from payplane_ingress.model import trace_sampling_percent

ENDPOINT = "http://otel-collector.monitoring:4318"
TLS_ENDPOINT = "https://otel.example.com"
ROUTING = "payplane-ingress-routing"


def _named(docs: list[dict], kind: str, name: str) -> dict:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def _routing(docs: list[dict]) -> dict[str, dict]:
    data = _named(docs, "ConfigMap", ROUTING)["data"]
    return {name: json.loads(text) for name, text in data.items()}


def _tracer(lds: dict) -> dict | None:
    hcm = lds["resources"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    return hcm.get("tracing")


def _lds(ingress) -> dict:
    return kubernetes.chart_files(ingress)["lds.json"]


def _otlp_clusters(cds: dict) -> list[dict]:
    return [c for c in cds["resources"] if c["name"] == render.OTLP_CLUSTER]


def _operator_env(docs: list[dict]) -> dict[str, str]:
    container = _named(docs, "Deployment", "operator")["spec"]["template"]["spec"]
    return {e["name"]: e.get("value") for e in container["containers"][0]["env"]}


def _collector_egress(docs: list[dict]) -> list[dict]:
    egress = _named(docs, "NetworkPolicy", "envoy")["spec"]["egress"]
    collector = {"port": 4318, "protocol": "TCP"}
    return [rule for rule in egress if "to" not in rule and collector in rule["ports"]]


def test_unset_endpoint_renders_no_tracer(renderer):
    docs = renderer.docs()
    routing = _routing(docs)
    assert _tracer(routing["lds.json"]) is None
    assert _otlp_clusters(routing["cds.json"]) == []
    assert not {"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_TRACES_SAMPLER_ARG"} & set(_operator_env(docs))
    assert _collector_egress(docs) == []


@pytest.mark.parametrize("endpoint", [ENDPOINT, ENDPOINT + "/"])
def test_endpoint_renders_envoys_tracer_and_collector_cluster(renderer, endpoint):
    docs = renderer.docs(values={"global": {"otel": {"endpoint": endpoint}}})
    routing = _routing(docs)
    tracer = _tracer(routing["lds.json"])
    # The default share of traces, not Envoy's own default of every request.
    assert tracer["random_sampling"] == {"value": 10}
    assert tracer["client_sampling"] == {"value": 0}
    provider = tracer["provider"]
    assert provider["name"] == "envoy.tracers.opentelemetry"
    http_uri = provider["typed_config"]["http_service"]["http_uri"]
    assert http_uri["uri"] == f"{ENDPOINT}/v1/traces"
    assert http_uri["cluster"] == render.OTLP_CLUSTER
    [cluster] = _otlp_clusters(routing["cds.json"])
    [host] = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"]
    address = host["endpoint"]["address"]["socket_address"]
    assert address == {"address": "otel-collector.monitoring", "port_value": 4318}
    assert cluster["type"] == "STRICT_DNS"
    # What the operator writes when it re-renders the routing from the same endpoint.
    operator_env = _operator_env(docs)
    assert operator_env["OTEL_EXPORTER_OTLP_ENDPOINT"] == endpoint
    expected = kubernetes.routing_files(kubernetes.cluster_ingress(operator_env))
    assert routing == {name: json.loads(text) for name, text in expected.items()}
    assert _collector_egress(docs), "Envoy may not reach the collector"


@pytest.mark.parametrize(("ratio", "percent"), [(0.25, 25), (1, 100), (0, 0), (0.0001, 0.01)])
def test_sample_ratio_is_envoys_rate_and_the_operators(renderer, ratio, percent):
    otel = {"endpoint": ENDPOINT, "sampleRatio": ratio}
    docs = renderer.docs(values={"global": {"otel": otel}})
    routing = _routing(docs)
    assert _tracer(routing["lds.json"])["random_sampling"] == {"value": percent}
    operator_env = _operator_env(docs)
    assert operator_env["OTEL_TRACES_SAMPLER"] == "parentbased_traceidratio"
    assert trace_sampling_percent(operator_env) == percent
    expected = kubernetes.routing_files(kubernetes.cluster_ingress(operator_env))
    assert routing == {name: json.loads(text) for name, text in expected.items()}
    # The services start their own traces (no Envoy in front) at the same rate.
    payments = _named(docs, "Deployment", "payments")["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in payments["containers"][0]["env"]}
    assert float(env["OTEL_TRACES_SAMPLER_ARG"]) == ratio


@pytest.mark.parametrize("ratio", [1.5, -0.1])
def test_a_sample_ratio_outside_0_to_1_is_refused(renderer, ratio):
    otel = {"endpoint": ENDPOINT, "sampleRatio": ratio}
    with pytest.raises(helm.HelmError, match="sampleRatio"):
        renderer.docs(chart="ingress", values={"global": {"otel": otel}})


@pytest.mark.parametrize(
    ("env", "percent"),
    [
        ({}, 100),
        ({"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"}, 10),
        ({"OTEL_TRACES_SAMPLER": "traceidratio"}, 100),
        ({"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "x"}, 100),
        ({"OTEL_TRACES_SAMPLER": "always_off"}, 0),
        ({"OTEL_TRACES_SAMPLER": "parentbased_always_on"}, 100),
    ],
)
def test_envoys_rate_is_read_like_the_sdks_sampler(env, percent):
    assert trace_sampling_percent(env) == percent


def test_tls_endpoint_renders_a_tls_cluster_on_443(renderer):
    docs = renderer.docs(values={"global": {"otel": {"endpoint": TLS_ENDPOINT}}})
    routing = _routing(docs)
    [cluster] = _otlp_clusters(routing["cds.json"])
    tls = cluster["transport_socket"]["typed_config"]
    assert tls["sni"] == "otel.example.com"
    address = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
    assert address["socket_address"] == {"address": "otel.example.com", "port_value": 443}
    expected = kubernetes.routing_files(kubernetes.cluster_ingress(_operator_env(docs)))
    assert routing == {name: json.loads(text) for name, text in expected.items()}


@pytest.mark.parametrize("endpoint", [ENDPOINT, TLS_ENDPOINT])
def test_tracing_routing_is_valid_for_envoy(tmp_path, endpoint):
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.1",
    }
    ingress = kubernetes.cluster_ingress(env)
    assert _tracer(_lds(ingress))["random_sampling"] == {"value": 10}
    static = tmp_path / "envoy-static.json"
    files.write_atomic(static, render.static_bootstrap(ingress))
    result = files.validate(static)
    assert result.returncode == 0, result.stderr


def test_an_endpoint_that_is_not_http_is_refused(renderer):
    with pytest.raises(helm.HelmError, match="an http:// or https:// OTLP endpoint"):
        renderer.docs(values={"global": {"otel": {"endpoint": "grpc://collector:4317"}}})
