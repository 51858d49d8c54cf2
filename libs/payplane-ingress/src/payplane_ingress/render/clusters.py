"""Clusters (CDS): one per upstream, with connection limits and outlier detection."""

from ipaddress import ip_address
from typing import Any
from urllib.parse import urlsplit

from payplane_ingress.model import Ingress, Upstream
from payplane_ingress.render.common import T, duration

OTLP_CLUSTER = "otlp-traces"


def _is_ip(host: str) -> bool:
    try:
        ip_address(host)
    except ValueError:
        return False
    return True


def _load_assignment(upstream: Upstream) -> dict[str, Any]:
    address = {"socket_address": {"address": upstream.host, "port_value": upstream.port}}
    return {
        "cluster_name": upstream.name,
        "endpoints": [{"lb_endpoints": [{"endpoint": {"address": address}}]}],
    }


def _circuit_breakers(upstream: Upstream) -> dict[str, Any]:
    limit = upstream.max_requests
    return {
        "thresholds": [
            {
                "max_connections": limit,
                "max_pending_requests": limit,
                "max_requests": limit,
                "max_retries": 3,
            }
        ]
    }


def _outlier_detection(upstream: Upstream) -> dict[str, Any]:
    # Ejection on gateway failures only (502/503/504, connect errors): a 500 may be one
    # merchant's input hitting a bug, and ejecting the only host would stop everyone.
    return {
        "consecutive_5xx": upstream.consecutive_5xx,
        "enforcing_consecutive_5xx": 0,
        "consecutive_gateway_failure": upstream.consecutive_5xx,
        "enforcing_consecutive_gateway_failure": 100,
        "interval": "5s",
        "base_ejection_time": "15s",
        "max_ejection_percent": 50,
    }


def _http1_options() -> dict[str, Any]:
    return {
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": T + "extensions.upstreams.http.v3.HttpProtocolOptions",
            "common_http_protocol_options": {"idle_timeout": "60s"},
            "explicit_http_config": {"http_protocol_options": {}},
        }
    }


def cluster(upstream: Upstream) -> dict[str, Any]:
    return {
        "@type": T + "config.cluster.v3.Cluster",
        "name": upstream.name,
        # A Kubernetes Service name is resolved (and re-resolved) by DNS; a local IP is static.
        "type": "STATIC" if _is_ip(upstream.host) else "STRICT_DNS",
        "connect_timeout": duration(upstream.connect_timeout_ms),
        "load_assignment": _load_assignment(upstream),
        "circuit_breakers": _circuit_breakers(upstream),
        "outlier_detection": _outlier_detection(upstream),
        "typed_extension_protocol_options": _http1_options(),
    }


def _otlp_cluster(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    # A collector Service name on Kubernetes becomes a STRICT_DNS cluster (see cluster()).
    otlp = cluster(Upstream(OTLP_CLUSTER, parts.hostname or "127.0.0.1", port))
    if parts.scheme == "https":
        otlp["transport_socket"] = {
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": T + "extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                "sni": parts.hostname,  # a collector behind a shared TLS front needs the name
            },
        }
    return otlp


def clusters(ingress: Ingress) -> dict[str, Any]:
    resources = [cluster(u) for u in (ingress.gateway, *ingress.upstreams)]
    if ingress.otlp_traces_url:
        resources.append(_otlp_cluster(ingress.otlp_traces_url))
    return {"resources": resources}
