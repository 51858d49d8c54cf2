"""What the ingress routes and how it protects the platform: plain data, no Envoy syntax."""

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from payplane_core import platform


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
class RateLimit:
    """A route's own token bucket (``burst`` refilled at ``requests_per_second``), in Envoy.

    With ``per_header`` each listed value of that request header gets its own bucket
    (``overrides``: value -> (requests_per_second, burst)); every other value shares the
    default bucket. For provider webhooks: one bucket per ``webhook-provider``, the limits
    coming from each Provider resource, the default for unknown or unnamed senders.
    """

    requests_per_second: int
    burst: int
    per_header: str | None = None
    overrides: tuple[tuple[str, int, int], ...] = ()


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
    rate_limit: RateLimit | None = None


@dataclass(frozen=True)
class Tls:
    certificate: str
    private_key: str


@dataclass(frozen=True)
class Ingress:
    listen_host: str = "127.0.0.1"
    listen_port: int = platform.port(platform.INGRESS)
    admin_host: str = "127.0.0.1"  # the admin interface is never exposed beyond loopback
    admin_port: int = platform.INGRESS_ADMIN_PORT
    gateway: Upstream = Upstream(
        platform.AUTHORIZER,
        platform.LOCAL_HOST,
        platform.port(platform.AUTHORIZER),
        timeout_ms=2_000,
    )
    upstreams: tuple[Upstream, ...] = ()
    routes: tuple[Route, ...] = ()
    tls: Tls | None = None
    max_body_bytes: int = 64 * 1024
    # Per client IP, before authorization: a token bucket of ``ip_burst`` refilled at ip_rps/s.
    ip_rps: int = 50
    ip_burst: int = 100
    authz_timeout_ms: int = 2_000
    access_log_path: str = "/dev/stdout"
    # OTLP/HTTP traces URL (``…/v1/traces``): Envoy starts each request's trace and exports it
    # there. None: no tracer, no cost.
    otlp_traces_url: str | None = None
    # Share of the requests Envoy starts a trace for that are recorded (its HCM's
    # ``random_sampling``): the services follow Envoy's decision, so this is the platform's rate.
    trace_sampling_percent: float = 100.0
    extra: dict = field(default_factory=dict)


def otlp_traces_url(env: Mapping[str, str]) -> str | None:
    """Envoy's exporter from the same standard variables as the services (OTLP/HTTP)."""
    if env.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return None
    if url := env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return url
    if base := env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return base.rstrip("/") + "/v1/traces"
    return None


# The SDK's samplers (OTEL_TRACES_SAMPLER) that record nothing, and those that take a ratio.
_SAMPLERS_OFF = ("always_off", "parentbased_always_off")
_RATIO_SAMPLERS = ("traceidratio", "parentbased_traceidratio")


def trace_sampling_percent(env: Mapping[str, str]) -> float:
    """The percentage of new traces Envoy records, read like the services' SDK reads its
    sampler (``OTEL_TRACES_SAMPLER``, ``OTEL_TRACES_SAMPLER_ARG``; default: every trace), so
    the edge keeps the rate the services are configured with instead of recording everything."""
    sampler = env.get("OTEL_TRACES_SAMPLER", "parentbased_always_on").strip().lower()
    if sampler in _SAMPLERS_OFF:
        return 0.0
    if sampler not in _RATIO_SAMPLERS:
        return 100.0
    try:
        ratio = float(env.get("OTEL_TRACES_SAMPLER_ARG", "1.0"))
    except ValueError:
        ratio = 1.0  # what the SDK falls back to for an unreadable argument
    # Rounded to Envoy's runtime granularity (0.01 %); the chart rounds alike.
    return round(min(max(ratio, 0.0), 1.0) * 100, 4)


# Provider callbacks are not merchant traffic: they come from a few addresses at the provider's
# own pace, so their route has its own limit instead of the per-IP one. Each provider named in
# ``providers`` (from its Provider resource's ``spec.webhookRateLimit``, else this default) gets
# its own bucket, keyed by the ``webhook-provider`` header; every other sender shares one
# default bucket. The webhooks service still checks each signature.
PROVIDER_WEBHOOK_ROUTE = "provider-webhook"
PROVIDER_WEBHOOK_LIMIT = RateLimit(100, 200, per_header="webhook-provider")


def provider_webhook_limit(providers: Mapping[str, tuple[int, int] | None]) -> RateLimit:
    """``providers``: name -> (requests per second, burst), or None for the default."""
    default = PROVIDER_WEBHOOK_LIMIT
    overrides = tuple(
        (name, *(limits or (default.requests_per_second, default.burst)))
        for name, limits in sorted(providers.items())
    )
    return replace(default, overrides=overrides)


def with_providers(ingress: Ingress, providers: Mapping[str, tuple[int, int] | None]) -> Ingress:
    """``ingress`` with a callback bucket for each of ``providers`` added to the ones it has
    (the local stack's simulators keep theirs; a Provider resource of the same name wins)."""
    known = {name: (rps, burst) for name, rps, burst in _webhook_overrides(ingress)}
    limit = provider_webhook_limit(known | dict(providers))
    return replace(
        ingress,
        routes=tuple(
            replace(r, rate_limit=limit) if r.name == PROVIDER_WEBHOOK_ROUTE else r
            for r in ingress.routes
        ),
    )


def _webhook_overrides(ingress: Ingress) -> tuple[tuple[str, int, int], ...]:
    route = next((r for r in ingress.routes if r.name == PROVIDER_WEBHOOK_ROUTE), None)
    return route.rate_limit.overrides if route and route.rate_limit else ()


def contract_routes(
    providers: Mapping[str, tuple[int, int] | None] | None = None,
) -> tuple[Route, ...]:
    """The public API of DESIGN.md (``payplane_core.platform.PUBLIC_ROUTES``), exactly, with
    per-provider callback limits for the ``providers`` given."""
    limits = {PROVIDER_WEBHOOK_ROUTE: provider_webhook_limit(providers or {})}
    return tuple(
        Route(
            r.name,
            r.methods,
            r.upstream,
            path=r.path,
            regex=r.regex,
            rate_limit=limits.get(r.name),
        )
        for r in platform.PUBLIC_ROUTES
    )
