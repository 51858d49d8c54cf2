"""Envoy's bootstrap: admin on loopback, LDS and CDS from watched files; and the all-static
twin that ``envoy --mode validate`` can check (it does not read file-based resources)."""

from typing import Any

from payplane_ingress.model import Ingress
from payplane_ingress.render.clusters import clusters
from payplane_ingress.render.common import (
    DYNAMIC_DIR_PLACEHOLDER,
    T,
    watched,
    without_type,
)
from payplane_ingress.render.listener import listener
from payplane_ingress.render.routes import route_configuration

__all__ = ["DYNAMIC_DIR_PLACEHOLDER", "bootstrap", "static_bootstrap"]


def _admin(ingress: Ingress) -> dict[str, Any]:
    address = {"address": ingress.admin_host, "port_value": ingress.admin_port}
    return {"address": {"socket_address": address}}


def _overload_manager() -> dict[str, Any]:
    monitor = {
        "@type": T + "extensions.resource_monitors.downstream_connections.v3."
        "DownstreamConnectionsConfig",
        "max_active_downstream_connections": 10_000,
    }
    return {
        "resource_monitors": [
            {
                "name": "envoy.resource_monitors.global_downstream_max_connections",
                "typed_config": monitor,
            }
        ]
    }


def bootstrap(ingress: Ingress) -> dict[str, Any]:
    return {
        "node": {"id": "payplane-ingress", "cluster": "payplane"},
        "admin": _admin(ingress),
        "dynamic_resources": {
            "lds_config": {"path_config_source": watched("lds"), "resource_api_version": "V3"},
            "cds_config": {"path_config_source": watched("cds"), "resource_api_version": "V3"},
        },
        "overload_manager": _overload_manager(),
    }


def static_bootstrap(ingress: Ingress) -> dict[str, Any]:
    """The same configuration with every resource inline, for ``envoy --mode validate``.

    Validation does not read file-based LDS/RDS/CDS, so this is what proves they are valid.
    """
    static_listener = listener(ingress)
    hcm = static_listener["filter_chains"][0]["filters"][0]["typed_config"]
    del hcm["rds"]
    hcm["route_config"] = without_type(route_configuration(ingress))
    return {
        "node": {"id": "payplane-ingress-validate", "cluster": "payplane"},
        "admin": _admin(ingress),
        "static_resources": {
            "listeners": [without_type(static_listener)],
            "clusters": [without_type(c) for c in clusters(ingress)["resources"]],
        },
    }
