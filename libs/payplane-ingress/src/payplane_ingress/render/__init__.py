"""Envoy v3 resources from an ``Ingress``, one module per thing rendered:

- ``clusters``: the upstream clusters (STRICT_DNS for Service names, STATIC for IPs);
- ``routes``: the route configuration (RDS), each route's methods, 405s, rate limits;
- ``filters``: the HTTP filters before the router (header hygiene, per-IP limit, ext_authz)
  and the tracer;
- ``replies``: Envoy's own replies as RFC 9457 problem documents;
- ``listener``: the listener (LDS) with its connection manager;
- ``bootstrap``: the bootstrap, and an all-static twin for ``envoy --mode validate``.
"""

from payplane_ingress.render.bootstrap import DYNAMIC_DIR_PLACEHOLDER, bootstrap, static_bootstrap
from payplane_ingress.render.clusters import OTLP_CLUSTER, cluster, clusters
from payplane_ingress.render.common import T
from payplane_ingress.render.listener import listener, listeners
from payplane_ingress.render.routes import route_configuration, routes

__all__ = [
    "DYNAMIC_DIR_PLACEHOLDER",
    "OTLP_CLUSTER",
    "T",
    "bootstrap",
    "cluster",
    "clusters",
    "listener",
    "listeners",
    "route_configuration",
    "routes",
    "static_bootstrap",
]
