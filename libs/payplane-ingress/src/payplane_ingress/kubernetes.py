"""The ingress's Envoy configuration on Kubernetes, as files for the Helm chart.

Same builder as the local stack (``render``), with the platform manifest's Service names as
upstream hosts (STRICT_DNS), the listener on every interface and the admin interface on loopback
only. Prometheus reads Envoy's statistics through a separate listener that exposes exactly
``/stats/prometheus`` of the admin interface, nothing else of it.

``python -m payplane_ingress.kubernetes charts/ingress/files`` writes them; ``tests/charts``
proves the chart's copies are in step. With an OTLP endpoint (the standard ``OTEL_*``
variables, ``global.otel.endpoint`` in the chart) Envoy starts each trace and exports it: the
chart fills the collector into ``traced/{http,https}/`` twins of the listener and clusters,
rendered here for a placeholder collector, and the operator renders the same from its own
environment.
"""

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from payplane_core import platform

from payplane_ingress import render
from payplane_ingress.model import (
    Ingress,
    Upstream,
    contract_routes,
    otlp_traces_url,
    trace_sampling_percent,
)

# Where the chart mounts the routing ConfigMap (the operator's watched directory).
DYNAMIC_DIR = "/etc/envoy/dynamic"
ROUTING_FILES = ("cds.json", "rds.json", "lds.json")
METRICS_PORT = 9902
ADMIN_CLUSTER = "envoy-admin"
# The collector the chart's traced files are rendered for; its templates put the real one
# (global.otel.endpoint) in place of this URL, host and port.
PLACEHOLDER_OTLP_HOST = "otlp.placeholder.invalid:65535"
# Likewise the sampling percentage (global.otel.sampleRatio x 100 replaces it): a ratio no one
# would configure, so the value is found in the generated listener alone.
PLACEHOLDER_SAMPLER_ARG = "0.424242"
# What the tracer changes: the listener (its tracer) and the clusters (the collector's).
TRACED_FILES = ("cds.json", "lds.json")


def cluster_ingress(env: Mapping[str, str] | None = None) -> Ingress:
    """``env``: the standard OTLP variables, if Envoy is to trace (None or unset: no tracer),
    and the sampler's (``OTEL_TRACES_SAMPLER``, ``_ARG``) for the share of traces it records."""
    env = env or {}
    return Ingress(
        listen_host="0.0.0.0",  # noqa: S104 - the pod's listener; the Service fronts it
        admin_host=platform.LOCAL_HOST,
        gateway=Upstream(
            platform.AUTHORIZER,
            platform.AUTHORIZER,
            platform.port(platform.AUTHORIZER),
            timeout_ms=2_000,
        ),
        upstreams=tuple(
            Upstream(name, name, platform.port(name)) for name in platform.public_upstreams()
        ),
        routes=contract_routes(),
        otlp_traces_url=otlp_traces_url(env),
        trace_sampling_percent=trace_sampling_percent(env),
    )


def _metrics_listener(ingress: Ingress) -> dict[str, Any]:
    route = {
        "match": {"path": "/stats/prometheus"},
        "route": {"cluster": ADMIN_CLUSTER},
    }
    not_found = {"match": {"prefix": "/"}, "direct_response": {"status": 404}}
    hcm = {
        "@type": render.T
        + "extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "metrics",
        "route_config": {
            "virtual_hosts": [{"name": "metrics", "domains": ["*"], "routes": [route, not_found]}]
        },
        "http_filters": [
            {
                "name": "envoy.filters.http.router",
                "typed_config": {"@type": render.T + "extensions.filters.http.router.v3.Router"},
            }
        ],
    }
    return {
        "name": "metrics",
        "address": {"socket_address": {"address": "0.0.0.0", "port_value": METRICS_PORT}},  # noqa: S104
        "filter_chains": [
            {
                "filters": [
                    {"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}
                ]
            }
        ],
    }


def _admin_cluster(ingress: Ingress) -> dict[str, Any]:
    cluster = render.cluster(
        Upstream(ADMIN_CLUSTER, ingress.admin_host, ingress.admin_port, timeout_ms=2_000)
    )
    return {k: v for k, v in cluster.items() if k not in ("@type", "outlier_detection")}


def _resolve(document: Any) -> Any:
    return json.loads(json.dumps(document).replace(render.DYNAMIC_DIR_PLACEHOLDER, DYNAMIC_DIR))


def bootstrap(ingress: Ingress) -> dict[str, Any]:
    document = render.bootstrap(ingress)
    document["static_resources"] = {
        "listeners": [_metrics_listener(ingress)],
        "clusters": [_admin_cluster(ingress)],
    }
    return _resolve(document)


def chart_files(ingress: Ingress | None = None) -> dict[str, Any]:
    """File name → document: the bootstrap and the initial routing (LDS, RDS, CDS)."""
    ingress = ingress or cluster_ingress()
    return {
        "envoy.json": bootstrap(ingress),
        "cds.json": _resolve(render.clusters(ingress)),
        "rds.json": _resolve(render.routes(ingress)),
        "lds.json": _resolve(render.listeners(ingress)),
    }


def routing_files(ingress: Ingress) -> dict[str, str]:
    """The routing ConfigMap's data (what Envoy watches): LDS, RDS and CDS, no bootstrap."""
    files = chart_files(ingress)
    return {name: dumps(files[name]) for name in ROUTING_FILES}


def dumps(document: Any) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def traced_chart_files() -> dict[str, Any]:
    """``scheme/file`` → the listener and clusters with Envoy's tracer, for the placeholder
    collector and sampling rate over plain HTTP and over TLS."""
    traced = {}
    for scheme in ("http", "https"):
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"{scheme}://{PLACEHOLDER_OTLP_HOST}",
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": PLACEHOLDER_SAMPLER_ARG,
        }
        files = chart_files(cluster_ingress(env))
        traced |= {f"{scheme}/{name}": files[name] for name in TRACED_FILES}
    return traced


def main(folder: str) -> None:
    for name, document in chart_files().items():
        (Path(folder) / name).write_text(dumps(document))
    for name, document in traced_chart_files().items():
        path = Path(folder) / "traced" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dumps(document))


if __name__ == "__main__":
    main(sys.argv[1])
