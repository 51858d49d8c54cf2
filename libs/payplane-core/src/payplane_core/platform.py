"""The platform manifest: one definition of what runs, on which port, under which name, with
which database, and which public routes the ingress exposes.

Everything that used to repeat these facts reads them from here: the local stack
(``payplane_cli.stack``), the Envoy config builder (``payplane_ingress``), the gateway's route
table, the Settings defaults of each service, and the Helm charts (``tests/charts`` proves the
chart values agree with this module).

Ports are the local stack's base ports and also the container ports on Kubernetes, so a URL
differs only by host: ``http://127.0.0.1:8102`` locally, ``http://merchants:8102`` in a cluster
(Kubernetes Services are named after the component).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Component:
    """One process of the platform. ``database`` is the logical database it owns, if any."""

    name: str
    port: int
    database: str | None = None


# The platform's components, in local start order (the ingress last).
COMPONENTS: dict[str, Component] = {
    c.name: c
    for c in (
        Component("payments", 8101, database="payments"),
        Component("merchants", 8102, database="merchants"),
        Component("gateway", 8103),
        Component("sim-a", 8201),
        Component("sim-b", 8202),
        Component("providers", 8104, database="providers"),
        Component("webhooks", 8105, database="logs"),
        Component("relay", 8111),
        Component("notifier", 8112, database="notifier"),
        Component("envoy", 8080),
    )
}
INGRESS = "envoy"
# Envoy's admin interface: loopback only, never exposed (locally nor in a cluster).
INGRESS_ADMIN_PORT = 9901
LOCAL_HOST = "127.0.0.1"


def port(name: str) -> int:
    return COMPONENTS[name].port


def local_url(name: str) -> str:
    """The component's URL on the local stack without a port offset (Settings defaults)."""
    return f"http://{LOCAL_HOST}:{port(name)}"


def cluster_url(name: str) -> str:
    """The component's URL inside a Kubernetes namespace (its Service is named after it)."""
    return f"http://{name}:{port(name)}"


@dataclass(frozen=True)
class PublicRoute:
    """A route of the public API: exact ``path`` or ``regex``, its methods and its upstream."""

    name: str
    methods: tuple[str, ...]
    upstream: str
    path: str | None = None
    regex: str | None = None


PAYMENTS_PATH = "/api/v1/payments"
PROVIDER_WEBHOOK_PATH = "/api/v1/payments/webhook"
_PAY_ID = r"[^/]+"  # the service answers 404 for ids it does not know

# The contract's public API (DESIGN.md), exactly; everything else is 404, wrong methods 405.
PUBLIC_ROUTES: tuple[PublicRoute, ...] = (
    PublicRoute("provider-webhook", ("POST",), "webhooks", path=PROVIDER_WEBHOOK_PATH),
    PublicRoute("payments", ("GET", "POST"), "payments", path=PAYMENTS_PATH),
    PublicRoute("payment-show", ("GET",), "payments", regex=rf"{PAYMENTS_PATH}/{_PAY_ID}/show"),
    PublicRoute(
        "payment-tracking", ("GET",), "payments", regex=rf"{PAYMENTS_PATH}/{_PAY_ID}/tracking"
    ),
)
# Envoy asks this one before any public route (ext_authz).
AUTHORIZER = "gateway"


def public_upstreams() -> tuple[str, ...]:
    """The services the ingress routes public traffic to, in route order, each once."""
    return tuple(dict.fromkeys(route.upstream for route in PUBLIC_ROUTES))
