"""The listener (LDS): one HTTP connection manager, its routes from RDS (a watched file)."""

from typing import Any

from payplane_ingress.model import Ingress
from payplane_ingress.render import filters
from payplane_ingress.render.common import LISTENER, ROUTES, T, watched
from payplane_ingress.render.replies import local_reply_config

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


def _access_log(path: str) -> dict[str, Any]:
    return {
        "name": "envoy.access_loggers.file",
        "typed_config": {
            "@type": T + "extensions.access_loggers.file.v3.FileAccessLog",
            "path": path,
            "log_format": {"json_format": ACCESS_LOG_FORMAT},
        },
    }


def _request_hygiene() -> dict[str, Any]:
    return {
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
    }


def _http_connection_manager(ingress: Ingress) -> dict[str, Any]:
    rds = {
        "route_config_name": ROUTES,
        "config_source": {"path_config_source": watched("rds"), "resource_api_version": "V3"},
    }
    hcm = {
        "@type": T + "extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "ingress",
        "codec_type": "AUTO",
        **_request_hygiene(),
        "rds": rds,
        "http_filters": [
            filters.header_mutation(ingress),
            filters.ip_rate_limit(ingress),
            filters.ext_authz(ingress),
            filters.router(),
        ],
        "local_reply_config": local_reply_config(),
        "access_log": [_access_log(ingress.access_log_path)],
    }
    if ingress.otlp_traces_url:
        hcm["tracing"] = filters.tracing(ingress.otlp_traces_url, ingress.trace_sampling_percent)
    return hcm


def _downstream_tls(certificate: str, private_key: str) -> dict[str, Any]:
    pair = {
        "certificate_chain": {"filename": certificate},
        "private_key": {"filename": private_key},
    }
    return {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": T + "extensions.transport_sockets.tls.v3.DownstreamTlsContext",
            "common_tls_context": {
                "tls_params": {"tls_minimum_protocol_version": "TLSv1_2"},
                "tls_certificates": [pair],
            },
        },
    }


def listener(ingress: Ingress) -> dict[str, Any]:
    hcm = {
        "name": "envoy.filters.network.http_connection_manager",
        "typed_config": _http_connection_manager(ingress),
    }
    chain: dict[str, Any] = {"filters": [hcm]}
    if ingress.tls is not None:
        chain["transport_socket"] = _downstream_tls(
            ingress.tls.certificate, ingress.tls.private_key
        )
    address = {"address": ingress.listen_host, "port_value": ingress.listen_port}
    return {
        "@type": T + "config.listener.v3.Listener",
        "name": LISTENER,
        "address": {"socket_address": address},
        "per_connection_buffer_limit_bytes": 1024 * 1024,
        "filter_chains": [chain],
    }


def listeners(ingress: Ingress) -> dict[str, Any]:
    return {"resources": [listener(ingress)]}
