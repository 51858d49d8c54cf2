"""The HTTP filters in front of the router, in their order: header hygiene, the per-IP limit,
ext_authz (the gateway decides); and the OpenTelemetry tracer."""

from typing import Any

from payplane_core.internal_auth import INTERNAL_HEADERS

from payplane_ingress.model import Ingress
from payplane_ingress.render.clusters import OTLP_CLUSTER
from payplane_ingress.render.common import ALWAYS, T, duration, header

# What the gateway needs to see of the client's request.
AUTHZ_REQUEST_HEADERS = (
    "authorization",
    "signature",
    "signature-input",
    "content-digest",
    "content-type",
    "idempotency-key",
    "x-request-id",
    "x-forwarded-for",
    "x-forwarded-proto",  # the scheme of the merchant's @target-uri
    "host",
    "date",  # some RFC 9421 clients cover it
    "traceparent",
    "tracestate",
)
AUTHZ_CLIENT_HEADERS = ("content-type", "retry-after", "www-authenticate", "x-request-id")
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}
HSTS = ("strict-transport-security", "max-age=31536000; includeSubDomains")


def header_mutation(ingress: Ingress) -> dict[str, Any]:
    response = dict(SECURITY_HEADERS)
    if ingress.tls is not None:
        response[HSTS[0]] = HSTS[1]
    return {
        "name": "envoy.filters.http.header_mutation",
        "typed_config": {
            "@type": T + "extensions.filters.http.header_mutation.v3.HeaderMutation",
            "mutations": {
                # First filter: nothing a client sets in these names survives to ext_authz.
                "request_mutations": [{"remove": name} for name in INTERNAL_HEADERS],
                "response_mutations": [
                    {"append": header(key, value)} for key, value in response.items()
                ],
            },
        },
    }


def ip_rate_limit(ingress: Ingress) -> dict[str, Any]:
    bucket = {
        "max_tokens": ingress.ip_burst,
        "tokens_per_fill": ingress.ip_rps,
        "fill_interval": "1s",
    }
    enabled = ALWAYS | {"runtime_key": "ip_rl"}
    return {
        "name": "envoy.filters.http.local_ratelimit",
        "typed_config": {
            "@type": T + "extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
            "stat_prefix": "per_ip",
            # Answered as 510 only so the local-reply mapper can tell it from the gateway's 429s
            # (Envoy sets the RL flag after the reply is formed); the mapper sends a 429 problem.
            "status": {"code": 510},
            # The default bucket is a generous global ceiling; each client IP gets its own bucket.
            "token_bucket": {
                "max_tokens": ingress.ip_burst * 100,
                "tokens_per_fill": ingress.ip_rps * 100,
                "fill_interval": "1s",
            },
            "filter_enabled": enabled,
            "filter_enforced": enabled,
            "always_consume_default_token_bucket": False,
            "max_dynamic_descriptors": 10_000,
            "descriptors": [{"entries": [{"key": "remote_address"}], "token_bucket": bucket}],
            "rate_limits": [{"actions": [{"remote_address": {}}]}],
            "response_headers_to_add": [header("retry-after", "1")],
        },
    }


def _authorization_response() -> dict[str, Any]:
    upstream = [{"exact": h} for h in INTERNAL_HEADERS] + [{"exact": "x-request-id"}]
    return {
        "allowed_upstream_headers": {"patterns": upstream},
        "allowed_client_headers": {"patterns": [{"exact": h} for h in AUTHZ_CLIENT_HEADERS]},
    }


def ext_authz(ingress: Ingress) -> dict[str, Any]:
    gateway = ingress.gateway
    return {
        "name": "envoy.filters.http.ext_authz",
        "typed_config": {
            "@type": T + "extensions.filters.http.ext_authz.v3.ExtAuthz",
            "transport_api_version": "V3",
            "failure_mode_allow": False,  # no gateway answer, no request
            # 502 only marks "gateway unreachable" for the local-reply mapper, which answers 503
            # with a problem body; the gateway's own 503 (open circuit) keeps its body.
            "status_on_error": {"code": 502},
            "allowed_headers": {
                "patterns": [{"exact": h, "ignore_case": True} for h in AUTHZ_REQUEST_HEADERS]
            },
            "with_request_body": {
                "max_request_bytes": ingress.max_body_bytes,
                "allow_partial_message": False,  # larger bodies are refused with 413
                "pack_as_bytes": True,
            },
            "http_service": {
                "server_uri": {
                    "uri": f"http://{gateway.host}:{gateway.port}",
                    "cluster": gateway.name,
                    "timeout": duration(ingress.authz_timeout_ms),
                },
                "path_prefix": "/authz",
                "authorization_response": _authorization_response(),
            },
        },
    }


def router() -> dict[str, Any]:
    return {
        "name": "envoy.filters.http.router",
        "typed_config": {"@type": T + "extensions.filters.http.router.v3.Router"},
    }


def tracing(url: str, sampling_percent: float) -> dict[str, Any]:
    """Envoy's OpenTelemetry tracer: it starts the trace (or continues a client's W3C
    ``traceparent``, keeping its sampled flag) and propagates it to the gateway (ext_authz) and
    the upstream. ``random_sampling`` decides for the traces it starts (the services follow);
    ``client_sampling`` 0: a client's ``x-client-trace-id`` does not force a recorded trace;
    ``overall_sampling`` stays 100 % (it would apply on top of the random rate)."""
    return {
        "random_sampling": {"value": sampling_percent},
        "client_sampling": {"value": 0},
        "provider": {
            "name": "envoy.tracers.opentelemetry",
            "typed_config": {
                "@type": T + "config.trace.v3.OpenTelemetryConfig",
                "service_name": "ingress",
                "http_service": {
                    "http_uri": {"uri": url, "cluster": OTLP_CLUSTER, "timeout": "2s"},
                },
            },
        },
    }
