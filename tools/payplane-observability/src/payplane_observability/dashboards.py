"""The five dashboards. Queries use only bounded labels (service, route template, status,
provider, reason…), the recording rules of ``rules.py`` and Envoy's own stats."""

from payplane_observability.panels import WINDOW, board, row, series, single
from payplane_observability.rules import CREATE_LATENCY_SECONDS, SLO_AVAILABILITY, SLO_LATENCY

W = WINDOW
HTTP = "payplane_http_requests_total"
HTTP_SECONDS = "payplane_http_request_duration_seconds_bucket"
INGRESS = 'envoy_http_conn_manager_prefix="ingress"'


def p(quantile: float, bucket: str, by: str = "", selector: str = "") -> str:
    """histogram_quantile over a rate, grouped ``by`` (plus ``le``)."""
    group = f"{by}, le" if by else "le"
    return f"histogram_quantile({quantile}, sum by ({group}) (rate({bucket}{selector}[{W}])))"


def overview():
    return board(
        "payplane-overview",
        "payplane / Platform overview",
        "SLOs (create availability, create latency, commit→webhook latency) and RED per service.",
        *_slo_panels(),
        *_red_panels(),
    )


def payments():
    return board(
        "payplane-payments",
        "payplane / Payments and providers",
        "Payments created and finished, provider attempts, latency, breakers and callbacks.",
        *_payment_panels(),
        *_provider_panels(),
        series(
            "Payments API latency p95",
            "95th percentile by route template of the payments service.",
            "s",
            (p(0.95, HTTP_SECONDS, "route", '{service="payments"}'), "{{route}}"),
        ),
    )


def pipeline():
    return board(
        "payplane-pipeline",
        "payplane / Async pipeline",
        "Outbox → relay → RabbitMQ → notifier → merchant: backlog, lag, deliveries, DB pools.",
        *_outbox_panels(),
        *_delivery_panels(),
    )


def gateway():
    return board(
        "payplane-gateway",
        "payplane / Gateway and security",
        "Authorization decisions by reason, ingress rate limiting and ext_authz, TLS expiry.",
        series(
            "Decisions by reason",
            "Gateway verdicts per second: signature, replay, rate, quota, breaker, key…",
            "ops",
            (
                f"sum by (decision, reason) (rate(payplane_gateway_decisions_total[{W}]))",
                "{{decision}} {{reason}}",
            ),
        ),
        series(
            "Decision latency p99",
            "99th percentile time for the gateway to decide, by decision.",
            "s",
            (p(0.99, "payplane_gateway_decision_seconds_bucket", "decision"), "{{decision}}"),
        ),
        series(
            "Ingress per-IP rate limiting",
            "Requests Envoy refused with its per-client-IP token bucket.",
            "reqps",
            (f"sum(rate(envoy_http_local_rate_limit_rate_limited[{W}]))", "rate limited"),
            width=8,
        ),
        series(
            "ext_authz outcomes",
            "Envoy's view of the gateway: allowed, denied, errors (gateway unreachable).",
            "reqps",
            (f"sum(rate(envoy_http_ext_authz_ok{{{INGRESS}}}[{W}]))", "ok"),
            (f"sum(rate(envoy_http_ext_authz_denied{{{INGRESS}}}[{W}]))", "denied"),
            (f"sum(rate(envoy_http_ext_authz_error{{{INGRESS}}}[{W}]))", "error"),
            width=8,
        ),
        single(
            "Days until a certificate expires",
            "Envoy's soonest-expiring certificate (very large when the ingress has no TLS).",
            "d",
            "min(envoy_server_days_until_first_cert_expiring)",
            width=8,
        ),
        series(
            "Ingress latency p95",
            "Envoy's downstream request time (all routes), in milliseconds.",
            "ms",
            (p(0.95, "envoy_http_downstream_rq_time_bucket", "", f"{{{INGRESS}}}"), "p95"),
        ),
        series(
            "Payments breaker",
            "1 while the payments breaker is open: the gateway refuses creates with 503; half-open"
            " (also 1): it lets one probe through, whose success closes it.",
            "bool",
            ('max(payplane_breaker_open{breaker=~".*payments.*"})', "payments"),
            ('max(payplane_breaker_half_open{breaker=~".*payments.*"})', "payments half-open"),
        ),
    )


def operator():
    return board(
        "payplane-operator",
        "payplane / Operator",
        "Reconciles of Merchant and Provider resources by kind and outcome, and their duration.",
        series(
            "Reconciles",
            "Reconciles per second by resource kind and outcome.",
            "ops",
            (
                f"sum by (kind, outcome) (rate(payplane_operator_reconciles_total[{W}]))",
                "{{kind}} {{outcome}}",
            ),
        ),
        series(
            "Reconcile duration p95",
            "95th percentile reconcile time by kind.",
            "s",
            (p(0.95, "payplane_operator_reconcile_duration_seconds_bucket", "kind"), "{{kind}}"),
        ),
        series(
            "Reconciles not succeeding",
            "Reconciles ending in retry (kopf backs off), permanent (bad spec) or error.",
            "ops",
            (
                "sum by (kind, outcome) (rate(payplane_operator_reconciles_total"
                f'{{outcome!="success"}}[{W}]))',
                "{{kind}} {{outcome}}",
            ),
        ),
    )


DASHBOARDS = {
    "platform-overview": overview,
    "payments-providers": payments,
    "async-pipeline": pipeline,
    "gateway-security": gateway,
    "operator": operator,
}


def _slo_panels() -> list:
    """The service level objectives and their burn."""
    return [
        row("Service level objectives"),
        single(
            "Create availability (1h)",
            f"Share of POST /api/v1/payments answered without a 5xx. SLO {SLO_AVAILABILITY:.1%}.",
            "percentunit",
            "1 - payplane:create_errors:ratio_rate1h",
        ),
        single(
            "Creates under 500 ms (1h)",
            f"Share of creates answered within {CREATE_LATENCY_SECONDS}s. SLO {SLO_LATENCY:.0%}.",
            "percentunit",
            "1 - payplane:create_slow:ratio_rate1h",
        ),
        single(
            "Availability budget burn (1h)",
            "Error-budget burn rate: 1 spends the 30-day budget in exactly 30 days; 14.4 pages.",
            "x",
            f"payplane:create_errors:ratio_rate1h / {1 - SLO_AVAILABILITY:g}",
        ),
        single(
            "Commit → webhook p95",
            "95th percentile from a payment event's commit to the merchant's verified 2xx.",
            "s",
            "histogram_quantile(0.95, sum by (le) (rate("
            "payplane_webhook_delivery_lag_seconds_bucket[1h])))",
        ),
        series(
            "Create burn rate by window",
            "Availability burn rate over the windows the multi-window alerts use.",
            "x",
            *[
                (f"payplane:create_errors:ratio_rate{w} / {1 - SLO_AVAILABILITY:g}", w)
                for w in ("5m", "1h", "6h")
            ],
        ),
        series(
            "Commit → webhook latency",
            "From the event's commit in payments to the merchant's 2xx (exemplars link traces).",
            "s",
            (p(0.5, "payplane_webhook_delivery_lag_seconds_bucket"), "p50"),
            (p(0.95, "payplane_webhook_delivery_lag_seconds_bucket"), "p95"),
        ),
    ]


def _red_panels() -> list:
    """Rate, errors and duration per service, and the ingress."""
    return [
        row("RED per service"),
        series(
            "Request rate",
            "Requests per second each service served (probes and scrapes included).",
            "reqps",
            (f"sum by (service) (rate({HTTP}[{W}]))", "{{service}}"),
            width=8,
        ),
        series(
            "Server errors",
            "5xx answers per second, by service.",
            "reqps",
            (f'sum by (service) (rate({HTTP}{{status=~"5.."}}[{W}]))', "{{service}}"),
            width=8,
        ),
        series(
            "Latency p95",
            "95th percentile request latency by service (exemplars link to traces).",
            "s",
            (p(0.95, HTTP_SECONDS, "service"), "{{service}}"),
            width=8,
        ),
        series(
            "Targets up",
            "1 when Prometheus could scrape the process (services, workers, Envoy).",
            "bool",
            ("max by (job) (up)", "{{job}}"),
        ),
        series(
            "Ingress responses by class",
            "Envoy's downstream responses per second by status class.",
            "reqps",
            (
                f"sum by (envoy_response_code_class) (rate(envoy_http_downstream_rq_xx{{{INGRESS}}}"
                f"[{W}]))",
                "{{envoy_response_code_class}}xx",
            ),
        ),
    ]


def _payment_panels() -> list:
    """Payments created and finished."""
    return [
        series(
            "Payments created",
            "Payments committed per second (idempotent replays not counted).",
            "ops",
            ("sum(rate(payplane_payments_created_total[$__rate_interval]))", "created"),
        ),
        series(
            "Payments finished",
            "Payments reaching a final status per second, by status and provider.",
            "ops",
            (
                f"sum by (status, provider) (rate(payplane_payments_finished_total[{W}]))",
                "{{status}} via {{provider}}",
            ),
        ),
    ]


def _provider_panels() -> list:
    """Provider attempts, latency, breakers, routing and callbacks."""
    return [
        series(
            "Provider attempts",
            "Charge attempts per second by provider and result (accepted, declined, error…).",
            "ops",
            (
                f"sum by (provider, result) (rate(payplane_provider_attempts_total[{W}]))",
                "{{provider}} {{result}}",
            ),
        ),
        series(
            "Provider attempt latency p95",
            "95th percentile of one charge call to the provider, by provider.",
            "s",
            (
                p(0.95, "payplane_provider_attempt_duration_seconds_bucket", "provider"),
                "{{provider}}",
            ),
        ),
        series(
            "Circuit breakers",
            "1 while a breaker is open (payments for the gateway, one per provider); half-open"
            " (also 1) while it waits for a probe's success.",
            "bool",
            ("max by (breaker) (payplane_breaker_open)", "{{breaker}}"),
            ("max by (breaker) (payplane_breaker_half_open)", "{{breaker}} half-open"),
        ),
        series(
            "Routing decisions",
            "What the providers service decided per payment.",
            "ops",
            (f"sum by (outcome) (rate(payplane_payments_routed_total[{W}]))", "{{outcome}}"),
        ),
        series(
            "Provider callbacks",
            "Provider webhooks received by verdict and reason (unverifiable ones are refused).",
            "ops",
            (
                f"sum by (verdict, reason) (rate(payplane_provider_webhooks_total[{W}]))",
                "{{verdict}} {{reason}}",
            ),
        ),
    ]


def _outbox_panels() -> list:
    """The outbox and the relay that publishes it."""
    return [
        series(
            "Outbox backlog",
            "Outbox events committed but not yet published by the relay.",
            "short",
            ("max(payplane_outbox_backlog_events)", "pending events"),
            width=8,
        ),
        series(
            "Oldest unpublished event",
            "Age of the oldest outbox event still waiting for the relay.",
            "s",
            ("max(payplane_outbox_oldest_pending_age_seconds)", "age"),
            width=8,
        ),
        series(
            "Relay publish lag",
            "From the event's commit to RabbitMQ's publisher confirm.",
            "s",
            (p(0.95, "payplane_relay_publish_lag_seconds_bucket"), "p95"),
            width=8,
        ),
        series(
            "Relay throughput",
            "Events published (confirmed) and failed publish attempts per second.",
            "ops",
            (f"sum(rate(payplane_relay_published_total[{W}]))", "published"),
            (f"sum(rate(payplane_relay_publish_errors_total[{W}]))", "errors"),
        ),
    ]


def _delivery_panels() -> list:
    """Webhook deliveries and the database pools."""
    return [
        series(
            "Webhook attempts",
            "Merchant webhook attempts per second by outcome and trigger.",
            "ops",
            (
                f"sum by (outcome, trigger) (rate(payplane_notifier_attempts_total[{W}]))",
                "{{trigger}} {{outcome}}",
            ),
        ),
        series(
            "Deliveries waiting or failed",
            "Deliveries still pending a retry, and those given up on (failed, need a human).",
            "short",
            ("sum by (state) (payplane_webhook_deliveries)", "{{state}}"),
        ),
        series(
            "Commit → verified 2xx",
            "Webhook delivery lag from the event's commit to the merchant's 2xx.",
            "s",
            (p(0.5, "payplane_webhook_delivery_lag_seconds_bucket"), "p50"),
            (p(0.99, "payplane_webhook_delivery_lag_seconds_bucket"), "p99"),
        ),
        series(
            "Database pool in use",
            "Connections checked out of each process's pool, against its maximum.",
            "short",
            ('sum by (job, database) (payplane_db_pool_connections{state="in_use"})', "{{job}}"),
            ("sum by (job, database) (payplane_db_pool_max_connections)", "{{job}} max"),
        ),
        series(
            "Database pool waiting",
            "Tasks waiting for a pooled connection (saturation).",
            "short",
            ("sum by (job, database) (payplane_db_pool_waiting)", "{{job}}"),
        ),
    ]
