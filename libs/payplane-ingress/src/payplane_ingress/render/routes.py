"""The route configuration (RDS): the contract's routes, each allowed method sent upstream,
any other method 405 with ``Allow``, everything else 404; per-route rate limits."""

from typing import Any

from payplane_ingress.model import Ingress, RateLimit, Route, Upstream
from payplane_ingress.render.common import ALWAYS, ROUTES, T, duration, header


def no_authz() -> dict[str, Any]:
    return {
        "envoy.filters.http.ext_authz": {
            "@type": T + "extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute",
            "disabled": True,
        }
    }


def _match(route: Route, method: str | None) -> dict[str, Any]:
    match: dict[str, Any] = (
        {"path": route.path} if route.path else {"safe_regex": {"regex": route.regex}}
    )
    if method:
        match["headers"] = [{"name": ":method", "string_match": {"exact": method}}]
    return match


def _retry_policy(target: Upstream) -> dict[str, Any]:
    return {
        "retry_on": "connect-failure,refused-stream,reset,retriable-status-codes",
        "retriable_status_codes": [503],
        "num_retries": 2,
        "per_try_timeout": duration(min(target.timeout_ms, 3_000)),
    }


def _upstream_route(route: Route, method: str, upstreams: dict[str, Upstream]) -> dict[str, Any]:
    target = upstreams[route.upstream]
    action: dict[str, Any] = {"cluster": target.name, "timeout": duration(target.timeout_ms)}
    if method in ("GET", "HEAD"):
        # Only idempotent reads are retried; a POST is never sent twice by the ingress.
        action["retry_policy"] = _retry_policy(target)
    entry = {
        "name": f"{route.name}-{method.lower()}",
        "match": _match(route, method),
        "route": action,
    }
    if not route.authorize:
        entry["typed_per_filter_config"] = no_authz()
    if route.rate_limit is not None:
        entry.setdefault("typed_per_filter_config", {}).update(_route_rate_limit(route))
    return entry


def _bucket(requests_per_second: int, burst: int) -> dict[str, Any]:
    return {"max_tokens": burst, "tokens_per_fill": requests_per_second, "fill_interval": "1s"}


def _per_header_buckets(limit: RateLimit) -> dict[str, Any]:
    """One bucket per listed value of ``limit.per_header``; other values share the default."""
    key = limit.per_header
    descriptors = [
        {"entries": [{"key": key, "value": value}], "token_bucket": _bucket(rps, burst)}
        for value, rps, burst in limit.overrides
    ]
    request_header = {"header_name": key, "descriptor_key": key, "skip_if_absent": True}
    return {
        "descriptors": descriptors,
        "rate_limits": [{"actions": [{"request_headers": request_header}]}],
    }


def _route_rate_limit(route: Route) -> dict[str, Any]:
    """The route's own local_ratelimit (replacing the per-IP one there): answered as 508 only
    so the local-reply mapper can turn it into its own 429 problem."""
    limit = route.rate_limit
    assert limit is not None
    config: dict[str, Any] = {
        "@type": T + "extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
        "stat_prefix": f"route_{route.name}",
        "status": {"code": 508},
        "token_bucket": _bucket(limit.requests_per_second, limit.burst),
        "filter_enabled": ALWAYS | {"runtime_key": f"rl_{route.name}_enabled"},
        "filter_enforced": ALWAYS | {"runtime_key": f"rl_{route.name}_enforced"},
        "always_consume_default_token_bucket": False,
        "response_headers_to_add": [header("retry-after", "1")],
    }
    if limit.per_header and limit.overrides:
        config |= _per_header_buckets(limit)
    return {"envoy.filters.http.local_ratelimit": config}


def _method_not_allowed(route: Route) -> dict[str, Any]:
    return {
        "name": f"{route.name}-405",
        "match": _match(route, None),
        "direct_response": {"status": 405},
        "response_headers_to_add": [header("allow", ", ".join(route.methods))],
        "typed_per_filter_config": no_authz(),
    }


def _health() -> dict[str, Any]:
    return {
        "name": "health",
        "match": {
            "path": "/health",
            "headers": [{"name": ":method", "string_match": {"exact": "GET"}}],
        },
        "direct_response": {"status": 200, "body": {"inline_string": '{"status":"ok"}'}},
        "response_headers_to_add": [header("content-type", "application/json")],
        "typed_per_filter_config": no_authz(),
    }


def _not_found() -> dict[str, Any]:
    return {
        "name": "not-found",
        "match": {"prefix": "/"},
        "direct_response": {"status": 404},
        "typed_per_filter_config": no_authz(),
    }


def route_configuration(ingress: Ingress) -> dict[str, Any]:
    upstreams = {u.name: u for u in ingress.upstreams}
    entries: list[dict[str, Any]] = [_health()]
    for route in ingress.routes:
        entries += [_upstream_route(route, method, upstreams) for method in route.methods]
        entries.append(_method_not_allowed(route))
    entries.append(_not_found())
    return {
        "@type": T + "config.route.v3.RouteConfiguration",
        "name": ROUTES,
        "virtual_hosts": [{"name": "payplane", "domains": ["*"], "routes": entries}],
        # Upstream banners never leave the platform.
        "response_headers_to_remove": ["server", "x-envoy-upstream-service-time"],
    }


def routes(ingress: Ingress) -> dict[str, Any]:
    return {"resources": [route_configuration(ingress)]}
