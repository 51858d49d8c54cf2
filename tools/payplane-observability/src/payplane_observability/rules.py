"""Recording and alerting rules, one Prometheus rule file per concern.

SLO alerts follow the Google SRE workbook's multi-window, multi-burn-rate recipe (chapter
"Alerting on SLOs", table 5-8): page when 2 % of the 30-day budget burns in 1 h (14.4x, checked
over 1h and 5m) or 5 % in 6 h (6x, 6h and 30m); ticket when 10 % burns in 3 days (1x, 3d and 6h)
or in 1 day (3x, 1d and 2h). The short window makes the alert stop soon after the burn does.
"""

# The runbooks live in this repository (docs/runbooks/<alert>.md); the chart may rewrite the base.
RUNBOOKS = "https://github.com/payplane/payplane/blob/main/docs/runbooks"
SLO_AVAILABILITY = 0.999
SLO_LATENCY = 0.99
CREATE_LATENCY_SECONDS = "0.5"
WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
# (severity, burn rate, long window, short window)
BURNS = (
    ("page", 14.4, "1h", "5m"),
    ("page", 6, "6h", "30m"),
    ("ticket", 3, "1d", "2h"),
    ("ticket", 1, "3d", "6h"),
)
CREATE = 'service="payments",method="POST",route="/api/v1/payments"'
SERVICES = "payments|merchants|gateway|providers|webhooks|relay|notifier|envoy"


def alert(name: str, expr: str, *, for_: str, severity: str, summary: str, description: str):
    rule = {"alert": name, "expr": expr}
    if for_ != "0m":
        rule["for"] = for_
    rule["labels"] = {"severity": severity, "service": "payplane"}
    rule["annotations"] = {
        "summary": summary,
        "description": description,
        "runbook_url": f"{RUNBOOKS}/{name}.md",
    }
    return rule


def _ratio_rules(record: str, bad: str, total: str) -> list[dict]:
    return [
        {
            "record": f"payplane:{record}:ratio_rate{w}",
            # No bad event yet is a ratio of 0, not "no data" (which would hide the SLI).
            "expr": f"(sum(rate({bad}[{w}])) or vector(0)) / sum(rate({total}[{w}]))",
        }
        for w in WINDOWS
    ]


def _burn_alerts(name: str, record: str, objective: float, what: str) -> list[dict]:
    budget = round(1 - objective, 6)
    alerts = []
    for severity in ("page", "ticket"):
        clauses = [
            f"(payplane:{record}:ratio_rate{long} > ({rate} * {budget})"
            f" and payplane:{record}:ratio_rate{short} > ({rate} * {budget}))"
            for sev, rate, long, short in BURNS
            if sev == severity
        ]
        speed, pace = ("Fast", "fast") if severity == "page" else ("Slow", "steadily")
        alerts.append(
            alert(
                f"{name}BudgetBurn{speed}",
                "\nor\n".join(clauses),
                for_="2m" if severity == "page" else "15m",
                severity=severity,
                summary=f"{what}: the error budget is burning {pace}",
                description=(
                    f"{what} is below its {objective:.2%} objective at a rate that spends the"
                    f" 30-day budget early; see payplane:{record}:ratio_rate* for each window."
                ),
            )
        )
    return alerts


def slo_group() -> dict:
    created = f"payplane_http_requests_total{{{CREATE}}}"
    errors = f'payplane_http_requests_total{{{CREATE},status=~"5.."}}'
    count = f"payplane_http_request_duration_seconds_count{{{CREATE}}}"
    fast = (
        f'payplane_http_request_duration_seconds_bucket{{{CREATE},le="{CREATE_LATENCY_SECONDS}"}}'
    )
    slow_rules = [
        {
            "record": f"payplane:create_slow:ratio_rate{w}",
            "expr": f"1 - (sum(rate({fast}[{w}])) / sum(rate({count}[{w}])))",
        }
        for w in WINDOWS
    ]
    return {
        "name": "payplane-slo-create",
        "rules": [
            *_ratio_rules("create_errors", errors, created),
            *slow_rules,
            *_burn_alerts(
                "PayplaneCreateAvailability",
                "create_errors",
                SLO_AVAILABILITY,
                "Create availability",
            ),
            *_burn_alerts(
                "PayplaneCreateLatency",
                "create_slow",
                SLO_LATENCY,
                f"Creates answered within {CREATE_LATENCY_SECONDS}s",
            ),
        ],
    }


def pipeline_group() -> dict:
    return {
        "name": "payplane-pipeline",
        "rules": [
            alert(
                "PayplaneOutboxBacklogOld",
                "max(payplane_outbox_oldest_pending_age_seconds) > 120",
                for_="5m",
                severity="page",
                summary="Payment events are not leaving the outbox",
                description="The oldest unpublished outbox event is over 2 minutes old:"
                " merchants and providers are not hearing about payments.",
            ),
            alert(
                "PayplaneWebhookFailures",
                'sum(rate(payplane_notifier_attempts_total{outcome="failure"}[15m]))'
                " / sum(rate(payplane_notifier_attempts_total[15m])) > 0.25",
                for_="15m",
                severity="ticket",
                summary="Many merchant webhook attempts fail",
                description="Over a quarter of merchant webhook attempts failed for 15 minutes.",
            ),
            alert(
                "PayplaneWebhookDeliveriesFailed",
                'max(payplane_webhook_deliveries{state="failed"}) > 0',
                for_="10m",
                severity="ticket",
                summary="Webhook deliveries gave up",
                description="Deliveries exhausted their retries and wait for a human.",
            ),
        ],
    }


def platform_group() -> dict:
    return {
        "name": "payplane-platform",
        "rules": [
            alert(
                "PayplaneTargetDown",
                f'up{{job=~"{SERVICES}"}} == 0',
                for_="2m",
                severity="page",
                summary="{{ $labels.job }} is down",
                description="Prometheus cannot scrape {{ $labels.job }} ({{ $labels.instance }}).",
            ),
            alert(
                "PayplaneBreakerOpen",
                "max by (breaker) (payplane_breaker_open) == 1",
                for_="1m",
                severity="page",
                summary="Circuit breaker {{ $labels.breaker }} is open",
                description="Requests to what {{ $labels.breaker }} protects are refused fast.",
            ),
            alert(
                "PayplaneIngressCertificateExpiry",
                "min(envoy_server_days_until_first_cert_expiring) < 14",
                for_="1h",
                severity="ticket",
                summary="The ingress certificate expires soon",
                description="A certificate Envoy serves expires in less than 14 days.",
            ),
        ],
    }


RULE_FILES = {
    "slo-create": slo_group,
    "pipeline": pipeline_group,
    "platform": platform_group,
}


def alert_names() -> list[str]:
    return [
        rule["alert"] for make in RULE_FILES.values() for rule in make()["rules"] if "alert" in rule
    ]
