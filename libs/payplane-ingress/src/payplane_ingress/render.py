"""Envoy v3 resources from an ``Ingress``: bootstrap, listener, routes and clusters."""

from ipaddress import ip_address
from typing import Any
from urllib.parse import urlsplit

from payplane_core.internal_auth import INTERNAL_HEADERS

from payplane_ingress.model import Ingress, Route, Upstream

T = "type.googleapis.com/envoy."
LISTENER, ROUTES = "ingress", "ingress-routes"

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


def _is_ip(host: str) -> bool:
    try:
        ip_address(host)
    except ValueError:
        return False
    return True


def _duration(ms: int) -> str:
    return f"{ms / 1000:.3f}s"


def _problem(status: int, slug: str, title: str, detail: str) -> dict[str, Any]:
    return {
        "type": f"https://payplane.dev/problems/{slug}",
        "title": title,
        "status": status,
        "detail": detail,
        "request_id": "%REQ(X-REQUEST-ID)%",
    }


# -- clusters ----------------------------------------------------------------------------------
def cluster(upstream: Upstream) -> dict[str, Any]:
    return {
        "@type": T + "config.cluster.v3.Cluster",
        "name": upstream.name,
        # A Kubernetes Service name is resolved (and re-resolved) by DNS; a local IP is static.
        "type": "STATIC" if _is_ip(upstream.host) else "STRICT_DNS",
        "connect_timeout": _duration(upstream.connect_timeout_ms),
        "load_assignment": {
            "cluster_name": upstream.name,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {
                            "endpoint": {
                                "address": {
                                    "socket_address": {
                                        "address": upstream.host,
                                        "port_value": upstream.port,
                                    }
                                }
                            }
                        }
                    ]
                }
            ],
        },
        "circuit_breakers": {
            "thresholds": [
                {
                    "max_connections": upstream.max_requests,
                    "max_pending_requests": upstream.max_requests,
                    "max_requests": upstream.max_requests,
                    "max_retries": 3,
                }
            ]
        },
        # Ejection on gateway failures only (502/503/504, connect errors): a 500 may be one
        # merchant's input hitting a bug, and ejecting the only host would stop everyone.
        "outlier_detection": {
            "consecutive_5xx": upstream.consecutive_5xx,
            "enforcing_consecutive_5xx": 0,
            "consecutive_gateway_failure": upstream.consecutive_5xx,
            "enforcing_consecutive_gateway_failure": 100,
            "interval": "5s",
            "base_ejection_time": "15s",
            "max_ejection_percent": 50,
        },
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": T + "extensions.upstreams.http.v3.HttpProtocolOptions",
                "common_http_protocol_options": {"idle_timeout": "60s"},
                "explicit_http_config": {"http_protocol_options": {}},
            }
        },
    }


def clusters(ingress: Ingress) -> dict[str, Any]:
    resources = [cluster(u) for u in (ingress.gateway, *ingress.upstreams)]
    if ingress.otlp_traces_url:
        resources.append(_otlp_cluster(ingress.otlp_traces_url))
    return {"resources": resources}


# -- tracing -----------------------------------------------------------------------------------
OTLP_CLUSTER = "otlp-traces"


def _otlp_cluster(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    # A collector Service name on Kubernetes becomes a STRICT_DNS cluster (see cluster()).
    otlp = cluster(Upstream(OTLP_CLUSTER, parts.hostname or "127.0.0.1", port))
    if parts.scheme == "https":
        otlp["transport_socket"] = {
            "name": "envoy.transport_sockets.tls",
            "typed_config": {"@type": T + "extensions.transport_sockets.tls.v3.UpstreamTlsContext"},
        }
    return otlp


def _tracing(url: str) -> dict[str, Any]:
    """Envoy's OpenTelemetry tracer: it starts the trace (or continues a client's W3C
    ``traceparent``) and propagates it to the gateway (ext_authz) and the upstream."""
    return {
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


# -- routes ------------------------------------------------------------------------------------
def _match(route: Route, method: str | None) -> dict[str, Any]:
    match: dict[str, Any] = (
        {"path": route.path} if route.path else {"safe_regex": {"regex": route.regex}}
    )
    if method:
        match["headers"] = [{"name": ":method", "string_match": {"exact": method}}]
    return match


def _upstream_route(route: Route, method: str, upstreams: dict[str, Upstream]) -> dict[str, Any]:
    target = upstreams[route.upstream]
    action: dict[str, Any] = {"cluster": target.name, "timeout": _duration(target.timeout_ms)}
    if method in ("GET", "HEAD"):
        # Only idempotent reads are retried; a POST is never sent twice by the ingress.
        action["retry_policy"] = {
            "retry_on": "connect-failure,refused-stream,reset,retriable-status-codes",
            "retriable_status_codes": [503],
            "num_retries": 2,
            "per_try_timeout": _duration(min(target.timeout_ms, 3_000)),
        }
    entry = {
        "name": f"{route.name}-{method.lower()}",
        "match": _match(route, method),
        "route": action,
    }
    if not route.authorize:
        entry["typed_per_filter_config"] = _no_authz()
    if route.rate_limit is not None:
        entry.setdefault("typed_per_filter_config", {}).update(_route_rate_limit(route))
    return entry


def _bucket(requests_per_second: int, burst: int) -> dict[str, Any]:
    return {"max_tokens": burst, "tokens_per_fill": requests_per_second, "fill_interval": "1s"}


def _route_rate_limit(route: Route) -> dict[str, Any]:
    """The route's own local_ratelimit (replacing the per-IP one there): answered as 508 only
    so the local-reply mapper can turn it into its own 429 problem."""
    limit = route.rate_limit
    assert limit is not None
    enabled = {"default_value": {"numerator": 100, "denominator": "HUNDRED"}}
    config: dict[str, Any] = {
        "@type": T + "extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
        "stat_prefix": f"route_{route.name}",
        "status": {"code": 508},
        "token_bucket": _bucket(limit.requests_per_second, limit.burst),
        "filter_enabled": enabled | {"runtime_key": f"rl_{route.name}_enabled"},
        "filter_enforced": enabled | {"runtime_key": f"rl_{route.name}_enforced"},
        "always_consume_default_token_bucket": False,
        "response_headers_to_add": [
            {
                "header": {"key": "retry-after", "value": "1"},
                "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
            }
        ],
    }
    if limit.per_header and limit.overrides:
        key = limit.per_header
        config["descriptors"] = [
            {"entries": [{"key": key, "value": value}], "token_bucket": _bucket(rps, burst)}
            for value, rps, burst in limit.overrides
        ]
        header = {"header_name": key, "descriptor_key": key, "skip_if_absent": True}
        config["rate_limits"] = [{"actions": [{"request_headers": header}]}]
    return {"envoy.filters.http.local_ratelimit": config}


def _method_not_allowed(route: Route) -> dict[str, Any]:
    allowed = ", ".join(route.methods)
    return {
        "name": f"{route.name}-405",
        "match": _match(route, None),
        "direct_response": {"status": 405},
        "response_headers_to_add": [
            {
                "header": {"key": "allow", "value": allowed},
                "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
            }
        ],
        "typed_per_filter_config": _no_authz(),
    }


def _no_authz() -> dict[str, Any]:
    return {
        "envoy.filters.http.ext_authz": {
            "@type": T + "extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute",
            "disabled": True,
        }
    }


def route_configuration(ingress: Ingress) -> dict[str, Any]:
    upstreams = {u.name: u for u in ingress.upstreams}
    routes: list[dict[str, Any]] = [
        {
            "name": "health",
            "match": {
                "path": "/health",
                "headers": [{"name": ":method", "string_match": {"exact": "GET"}}],
            },
            "direct_response": {"status": 200, "body": {"inline_string": '{"status":"ok"}'}},
            "response_headers_to_add": [
                {
                    "header": {"key": "content-type", "value": "application/json"},
                    "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                }
            ],
            "typed_per_filter_config": _no_authz(),
        }
    ]
    for route in ingress.routes:
        routes += [_upstream_route(route, method, upstreams) for method in route.methods]
        routes.append(_method_not_allowed(route))
    routes.append(
        {
            "name": "not-found",
            "match": {"prefix": "/"},
            "direct_response": {"status": 404},
            "typed_per_filter_config": _no_authz(),
        }
    )
    return {
        "@type": T + "config.route.v3.RouteConfiguration",
        "name": ROUTES,
        "virtual_hosts": [{"name": "payplane", "domains": ["*"], "routes": routes}],
        # Upstream banners never leave the platform.
        "response_headers_to_remove": ["server", "x-envoy-upstream-service-time"],
    }


def routes(ingress: Ingress) -> dict[str, Any]:
    return {"resources": [route_configuration(ingress)]}


# -- listener ----------------------------------------------------------------------------------
def _header_mutation(ingress: Ingress) -> dict[str, Any]:
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
                    {
                        "append": {
                            "header": {"key": key, "value": value},
                            "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                        }
                    }
                    for key, value in response.items()
                ],
            },
        },
    }


def _ip_rate_limit(ingress: Ingress) -> dict[str, Any]:
    bucket = {
        "max_tokens": ingress.ip_burst,
        "tokens_per_fill": ingress.ip_rps,
        "fill_interval": "1s",
    }
    enabled = {
        "default_value": {"numerator": 100, "denominator": "HUNDRED"},
        "runtime_key": "ip_rl",
    }
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
            "response_headers_to_add": [
                {
                    "header": {"key": "retry-after", "value": "1"},
                    "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                }
            ],
        },
    }


def _ext_authz(ingress: Ingress) -> dict[str, Any]:
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
                    "timeout": _duration(ingress.authz_timeout_ms),
                },
                "path_prefix": "/authz",
                "authorization_response": {
                    "allowed_upstream_headers": {
                        "patterns": [{"exact": h} for h in INTERNAL_HEADERS]
                        + [{"exact": "x-request-id"}]
                    },
                    "allowed_client_headers": {
                        "patterns": [{"exact": h} for h in AUTHZ_CLIENT_HEADERS]
                    },
                },
            },
        },
    }


ACCESS_LOG_FORMAT = {
    "time": "%START_TIME%",
    "request_id": "%REQ(X-REQUEST-ID)%",
    "client": "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%",
    "method": "%REQ(:METHOD)%",
    "path": "%REQ(:PATH)%",
    "status": "%RESPONSE_CODE%",
    "flags": "%RESPONSE_FLAGS%",
    "details": "%RESPONSE_CODE_DETAILS%",
    "upstream": "%UPSTREAM_CLUSTER%",
    "duration_ms": "%DURATION%",
    "bytes_in": "%BYTES_RECEIVED%",
    "bytes_out": "%BYTES_SENT%",
    "trace_id": "%TRACE_ID%",
}

# Envoy's own replies become problem documents. Matched by status where only Envoy answers
# with it (404/405: unknown route or method; 413: body over the limit) and by response flag
# where the gateway may answer with the same status (its denials keep their own body).
LOCAL_REPLIES = [
    ({"status": 404}, 404, "not-found", "Not Found", "No such route in the payplane API."),
    ({"status": 405}, 405, "method-not-allowed", "Method Not Allowed", "See the Allow header."),
    ({"status": 413}, 413, "body-too-large", "Content Too Large", "The request body is too large."),
    (
        {"status": 510},
        429,
        "rate-limited",
        "Too Many Requests",
        "Too many requests from this address.",
    ),
    ({"flag": "UO"}, 503, "overloaded", "Service Unavailable", "At capacity; retry later."),
    (
        {"flag": "UF"},
        503,
        "upstream-unavailable",
        "Service Unavailable",
        "A service is unreachable.",
    ),
    ({"flag": "UH"}, 503, "upstream-unavailable", "Service Unavailable", "No healthy instance."),
    (
        {"flag": "UT"},
        504,
        "upstream-timeout",
        "Gateway Timeout",
        "A service did not answer in time.",
    ),
    (
        {"flag": "UAEX", "status": 502},
        503,
        "authorization-unavailable",
        "Service Unavailable",
        "Requests cannot be authorized right now; retry later.",
    ),
    (
        {"status": 508},
        429,
        "route-rate-limited",
        "Too Many Requests",
        "Too many requests on this route; retry later.",
    ),
    # A reset or closed upstream connection ("upstream connect error or disconnect/reset"):
    # the request may or may not have been applied, so 502, and a retry with the same
    # Idempotency-Key is safe.
    *[
        (
            {"flag": flag},
            502,
            "upstream-reset",
            "Bad Gateway",
            "A service closed the connection before answering; retry (with the same "
            "Idempotency-Key for a create).",
        )
        for flag in ("UC", "UR", "URX", "LR", "UMSDR", "UPE")
    ],
    # Anything else Envoy itself answers with 5xx (the gateway's denials, flag UAEX, kept
    # their own problem body through the pass-through mapper before this one).
    (
        {"status_at_least": 500},
        502,
        "upstream-error",
        "Bad Gateway",
        "The request could not be completed; retry later.",
    ),
]
# Envoy's own 4xx replies (malformed requests, header limits, timeouts) keep their status.
GENERIC_4XX = {
    "type": "https://payplane.dev/problems/bad-request",
    "title": "Request refused by the ingress",
    "status": "%RESPONSE_CODE%",
    "detail": "%RESPONSE_CODE_DETAILS%",
    "request_id": "%REQ(X-REQUEST-ID)%",
}


def _status_filter(op: str, status: int) -> dict[str, Any]:
    value = {"default_value": status, "runtime_key": f"local_reply_{op.lower()}_{status}"}
    return {"status_code_filter": {"comparison": {"op": op, "value": value}}}


def _reply_filter(match: dict[str, Any]) -> dict[str, Any]:
    filters = []
    if "flag" in match:
        filters.append({"response_flag_filter": {"flags": [match["flag"]]}})
    if "status" in match:
        filters.append(_status_filter("EQ", match["status"]))
    if "status_at_least" in match:
        filters.append(_status_filter("GE", match["status_at_least"]))
    return filters[0] if len(filters) == 1 else {"and_filter": {"filters": filters}}


def _mapper(filter_: dict[str, Any], body: dict[str, Any], status: int | None) -> dict[str, Any]:
    mapper: dict[str, Any] = {
        "filter": filter_,
        "body_format_override": {
            "json_format": body,
            "content_type": "application/problem+json",
        },
    }
    if status is not None:
        mapper["status_code"] = status
    if status is not None and status >= 500 or status == 429:
        mapper["headers_to_add"] = [
            {
                "header": {"key": "retry-after", "value": "1"},
                "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
            }
        ]
    return mapper


def _local_reply_config() -> dict[str, Any]:
    mappers = [
        _mapper(_reply_filter(match), _problem(status, slug, title, detail), status)
        for match, status, slug, title, detail in LOCAL_REPLIES
    ]
    # The gateway's denials (ext_authz, flag UAEX) carry their own problem body: first match
    # wins, and this mapper changes nothing, so the catch-alls below never touch them.
    passthrough = {"filter": _reply_filter({"flag": "UAEX"})}
    uaex_at = next(i for i, (match, *_) in enumerate(LOCAL_REPLIES) if match.get("flag") == "UAEX")
    mappers.insert(uaex_at + 1, passthrough)
    # Last: every other reply Envoy makes itself, as a problem with its own status.
    mappers.append(_mapper(_reply_filter({"status_at_least": 400}), GENERIC_4XX, None))
    return {"mappers": mappers}


def _http_connection_manager(ingress: Ingress) -> dict[str, Any]:
    return {
        "@type": T + "extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "ingress",
        "codec_type": "AUTO",
        # The client is the TCP peer: a client's own X-Forwarded-For is not trusted.
        "use_remote_address": True,
        "xff_num_trusted_hops": 0,
        "generate_request_id": True,
        "preserve_external_request_id": True,
        "always_set_request_id_in_response": True,
        "server_header_transformation": "PASS_THROUGH",  # and 'server' is removed: no banner
        "normalize_path": True,
        "merge_slashes": True,
        "path_with_escaped_slashes_action": "REJECT_REQUEST",
        "request_timeout": "30s",
        "stream_idle_timeout": "30s",
        "common_http_protocol_options": {"headers_with_underscores_action": "REJECT_REQUEST"},
        "rds": {
            "route_config_name": ROUTES,
            "config_source": {"path_config_source": _watched("rds"), "resource_api_version": "V3"},
        },
        "http_filters": [
            _header_mutation(ingress),
            _ip_rate_limit(ingress),
            _ext_authz(ingress),
            {
                "name": "envoy.filters.http.router",
                "typed_config": {"@type": T + "extensions.filters.http.router.v3.Router"},
            },
        ],
        "local_reply_config": _local_reply_config(),
        **({"tracing": _tracing(ingress.otlp_traces_url)} if ingress.otlp_traces_url else {}),
        "access_log": [
            {
                "name": "envoy.access_loggers.file",
                "typed_config": {
                    "@type": T + "extensions.access_loggers.file.v3.FileAccessLog",
                    "path": ingress.access_log_path,
                    "log_format": {"json_format": ACCESS_LOG_FORMAT},
                },
            }
        ],
    }


def listener(ingress: Ingress) -> dict[str, Any]:
    chain: dict[str, Any] = {
        "filters": [
            {
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": _http_connection_manager(ingress),
            }
        ]
    }
    if ingress.tls is not None:
        chain["transport_socket"] = {
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": T + "extensions.transport_sockets.tls.v3.DownstreamTlsContext",
                "common_tls_context": {
                    "tls_params": {"tls_minimum_protocol_version": "TLSv1_2"},
                    "tls_certificates": [
                        {
                            "certificate_chain": {"filename": ingress.tls.certificate},
                            "private_key": {"filename": ingress.tls.private_key},
                        }
                    ],
                },
            },
        }
    return {
        "@type": T + "config.listener.v3.Listener",
        "name": LISTENER,
        "address": {
            "socket_address": {"address": ingress.listen_host, "port_value": ingress.listen_port}
        },
        "per_connection_buffer_limit_bytes": 1024 * 1024,
        "filter_chains": [chain],
    }


def listeners(ingress: Ingress) -> dict[str, Any]:
    return {"resources": [listener(ingress)]}


# -- bootstrap ---------------------------------------------------------------------------------
_DYNAMIC_DIR = "__DYNAMIC_DIR__"  # replaced by files.write_all with the real folder


def _watched(kind: str) -> dict[str, Any]:
    return {"path": f"{_DYNAMIC_DIR}/{kind}.json", "watched_directory": {"path": _DYNAMIC_DIR}}


def bootstrap(ingress: Ingress) -> dict[str, Any]:
    return {
        "node": {"id": "payplane-ingress", "cluster": "payplane"},
        "admin": {
            "address": {
                "socket_address": {"address": ingress.admin_host, "port_value": ingress.admin_port}
            }
        },
        "dynamic_resources": {
            "lds_config": {"path_config_source": _watched("lds"), "resource_api_version": "V3"},
            "cds_config": {"path_config_source": _watched("cds"), "resource_api_version": "V3"},
        },
        "overload_manager": {
            "resource_monitors": [
                {
                    "name": "envoy.resource_monitors.global_downstream_max_connections",
                    "typed_config": {
                        "@type": T + "extensions.resource_monitors.downstream_connections.v3."
                        "DownstreamConnectionsConfig",
                        "max_active_downstream_connections": 10_000,
                    },
                }
            ]
        },
    }


def static_bootstrap(ingress: Ingress) -> dict[str, Any]:
    """The same configuration with every resource inline, for ``envoy --mode validate``.

    Validation does not read file-based LDS/RDS/CDS, so this is what proves they are valid.
    """
    static_listener = listener(ingress)
    hcm = static_listener["filter_chains"][0]["filters"][0]["typed_config"]
    del hcm["rds"]
    hcm["route_config"] = {k: v for k, v in route_configuration(ingress).items() if k != "@type"}
    return {
        "node": {"id": "payplane-ingress-validate", "cluster": "payplane"},
        "admin": bootstrap(ingress)["admin"],
        "static_resources": {
            "listeners": [{k: v for k, v in static_listener.items() if k != "@type"}],
            "clusters": [
                {k: v for k, v in c.items() if k != "@type"} for c in clusters(ingress)["resources"]
            ],
        },
    }
