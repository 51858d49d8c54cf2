"""Rule files: valid for promtool, in step with their generator, and each alert fires on the
failure it is for and stays silent on healthy data (``promtool test rules``)."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from payplane_observability.generate import stale
from payplane_observability.rules import RULE_FILES, alert_names

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "charts" / "payplane" / "rules"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian prometheus)")
C = 'service="payments",method="POST",route="/api/v1/payments"'


def created(per_step: int, failed_per_step: int, steps: int) -> list[dict]:
    series = [
        {
            "series": f'payplane_http_requests_total{{{C},status="201"}}',
            "values": f"0+{per_step}x{steps}",
        }
    ]
    if failed_per_step:
        series.append(
            {
                "series": f'payplane_http_requests_total{{{C},status="503"}}',
                "values": f"0+{failed_per_step}x{steps}",
            }
        )
    return series


def latency(total: int, fast: int, steps: int) -> list[dict]:
    bucket = "payplane_http_request_duration_seconds"
    return [
        {"series": f"{bucket}_count{{{C}}}", "values": f"0+{total}x{steps}"},
        {"series": f'{bucket}_bucket{{{C},le="0.5"}}', "values": f"0+{fast}x{steps}"},
    ]


def gauge(series: str, value: float, steps: int) -> list[dict]:
    return [{"series": series, "values": f"{value:g}x{steps}"}]


def attempts(failures: int, successes: int) -> list[dict]:
    name = "payplane_notifier_attempts_total"
    return [
        {
            "series": f'{name}{{outcome="failure",trigger="automatic"}}',
            "values": f"0+{failures}x60",
        },
        {
            "series": f'{name}{{outcome="success",trigger="automatic"}}',
            "values": f"0+{successes}x60",
        },
    ]


DAY = 400  # steps of 5m: a little over a day, enough for the 1d windows
SRC = '{job="relay",instance="127.0.0.1:8111"}'
FAST = ("1m", "70m", {})  # fast burn: 1h and 5m windows, 1-minute steps
SLOW = ("5m", "1500m", {})  # slow burn: 1d and 2h windows, 5-minute steps


def gauge_case(series: str, failing: float, healthy: float, steps: int, *, at: str, labels=None):
    """One gauge, sampled every minute: the alert fires at ``at`` on ``failing``, never on
    ``healthy``."""
    return "1m", at, labels or {}, gauge(series, failing, steps), gauge(series, healthy, steps)


BREAKER = 'payplane_breaker_open{job="providers",breaker="cb:provider:sim-a"}'
CERT_DAYS = 'envoy_server_days_until_first_cert_expiring{job="envoy"}'
FAILED_DELIVERIES = 'payplane_webhook_deliveries{job="notifier",state="failed"}'
# alert -> (interval, eval time, labels it fires with, failing input, healthy input)
CASES = {
    "PayplaneCreateAvailabilityBudgetBurnFast": (
        *FAST,
        created(100, 5, 120),
        created(100, 0, 120),
    ),
    "PayplaneCreateAvailabilityBudgetBurnSlow": (
        *SLOW,
        created(5000, 25, DAY),
        created(5000, 0, DAY),
    ),
    "PayplaneCreateLatencyBudgetBurnFast": (*FAST, latency(100, 80, 120), latency(100, 100, 120)),
    "PayplaneCreateLatencyBudgetBurnSlow": (
        *SLOW,
        latency(5000, 4750, DAY),
        latency(5000, 5000, DAY),
    ),
    "PayplaneOutboxBacklogOld": gauge_case(
        f"payplane_outbox_oldest_pending_age_seconds{SRC}", 300, 1, 20, at="10m"
    ),
    "PayplaneWebhookFailures": ("1m", "40m", {}, attempts(5, 5), attempts(0, 10)),
    "PayplaneWebhookDeliveriesFailed": gauge_case(FAILED_DELIVERIES, 3, 0, 30, at="20m"),
    "PayplaneTargetDown": gauge_case(
        f"up{SRC}", 0, 1, 10, at="5m", labels={"job": "relay", "instance": "127.0.0.1:8111"}
    ),
    "PayplaneBreakerOpen": gauge_case(
        BREAKER, 1, 0, 10, at="5m", labels={"breaker": "cb:provider:sim-a"}
    ),
    "PayplaneIngressCertificateExpiry": gauge_case(CERT_DAYS, 3, 4294967295, 120, at="90m"),
}


def rule_of(name: str) -> dict:
    for make in RULE_FILES.values():
        for rule in make()["rules"]:
            if rule.get("alert") == name:
                return rule
    raise KeyError(name)


def expected(name: str, labels: dict[str, str]) -> dict:
    rule = rule_of(name)
    annotations = {
        key: re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m.group(1)], text)
        for key, text in rule["annotations"].items()
    }
    return {"exp_labels": rule["labels"] | labels, "exp_annotations": annotations}


def test_files_match_their_generator():
    assert stale(REPO) == [], "run: .venv/bin/python -m payplane_observability"


def test_every_alert_has_a_test_case_and_a_runbook():
    names = alert_names()
    assert sorted(CASES) == sorted(names)
    for name in names:
        url = rule_of(name)["annotations"]["runbook_url"]
        assert url.endswith(f"/docs/runbooks/{name}.md")
        text = (REPO / "docs" / "runbooks" / f"{name}.md").read_text()
        for section in ("## What it means", "## What to look at", "## What to do"):
            assert section in text, (name, section)


@needs_promtool
def test_promtool_checks_every_rule_file():
    files = sorted(RULES.glob("*.yaml"))
    assert len(files) == len(RULE_FILES)
    result = subprocess.run(  # noqa: S603 - fixed argv
        [PROMTOOL, "check", "rules", *map(str, files)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_each_alert_fires_on_its_failure_and_not_on_healthy_data(tmp_path):
    tests = []
    for name, (interval, at, labels, failing, healthy) in CASES.items():
        for series, alerts in ((failing, [expected(name, labels)]), (healthy, [])):
            tests.append(
                {
                    "name": f"{name} {'fires' if alerts else 'silent'}",
                    "interval": interval,
                    "input_series": series,
                    "alert_rule_test": [{"eval_time": at, "alertname": name, "exp_alerts": alerts}],
                }
            )
    unit = tmp_path / "alerts_test.yaml"
    unit.write_text(
        yaml.safe_dump(
            {"rule_files": [str(p) for p in sorted(RULES.glob("*.yaml"))], "tests": tests},
            sort_keys=False,
        )
    )
    result = subprocess.run(  # noqa: S603 - fixed argv
        [PROMTOOL, "test", "rules", str(unit)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
