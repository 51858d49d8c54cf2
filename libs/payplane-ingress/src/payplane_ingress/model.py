"""What the ingress routes and how it protects the platform: plain data, no Envoy syntax."""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Upstream:
    """A service Envoy sends traffic to (one cluster)."""

    name: str
    host: str
    port: int
    timeout_ms: int = 10_000
    connect_timeout_ms: int = 1_000
    # Cluster protection: outlier detection ejects a host after this many consecutive 5xx.
    consecutive_5xx: int = 5
    max_requests: int = 1024


@dataclass(frozen=True)
class Route:
    """A public route: exact path or a regex, allowed methods, and where it goes.

    ``authorize=False`` skips ext_authz: only for routes whose upstream authenticates every
    request itself (none of the contract's routes do).
    """

    name: str
    methods: tuple[str, ...]
    upstream: str
    path: str | None = None
    regex: str | None = None
    authorize: bool = True


@dataclass(frozen=True)
class Tls:
    certificate: str
    private_key: str


@dataclass(frozen=True)
class Ingress:
    listen_host: str = "127.0.0.1"
    listen_port: int = 8080
    admin_host: str = "127.0.0.1"  # the admin interface is never exposed beyond loopback
    admin_port: int = 9901
    gateway: Upstream = Upstream("gateway", "127.0.0.1", 8103, timeout_ms=2_000)
    upstreams: tuple[Upstream, ...] = ()
    routes: tuple[Route, ...] = ()
    tls: Tls | None = None
    max_body_bytes: int = 64 * 1024
    # Per client IP, before authorization: a token bucket of ``ip_burst`` refilled at ip_rps/s.
    ip_rps: int = 50
    ip_burst: int = 100
    authz_timeout_ms: int = 2_000
    access_log_path: str = "/dev/stdout"
    extra: dict = field(default_factory=dict)


def contract_routes() -> tuple[Route, ...]:
    """The public API of DESIGN.md, exactly; everything else is 404 and wrong methods 405."""
    pay_id = r"[^/]+"  # the service answers 404 for ids it does not know
    return (
        Route("provider-webhook", ("POST",), "webhooks", path="/api/v1/payments/webhook"),
        Route("payments", ("GET", "POST"), "payments", path="/api/v1/payments"),
        Route("payment-show", ("GET",), "payments", regex=rf"/api/v1/payments/{pay_id}/show"),
        Route(
            "payment-tracking", ("GET",), "payments", regex=rf"/api/v1/payments/{pay_id}/tracking"
        ),
    )
