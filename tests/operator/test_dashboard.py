"""The operator dashboard against a real Prometheus: the operator runs as a process, a
Prometheus of this test's own scrapes it, and after a reconcile that succeeds and one that
cannot (an unknown plan), every panel query of the dashboard returns a series."""

import asyncio
import json
import shutil
import subprocess

import httpx
import pytest

from tests.observability import grafana
from tests.operator.test_merchants import MERCHANTS, NS, PLANS, merchant, plan, ready, unique
from tests.operator.test_replicas import free_port, spawn, stop
from tests.support.kube import wait_for, watching

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(not shutil.which("prometheus"), reason="no prometheus binary"),
]


def prometheus(tmp_path, target: str, port: int) -> subprocess.Popen:
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{"job_name": "operator", "static_configs": [{"targets": [target]}]}],
    }
    (tmp_path / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
    return subprocess.Popen(  # noqa: S603 - fixed argv
        [
            shutil.which("prometheus"),
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )


def series(port: int, expr: str) -> list[dict]:
    try:
        response = httpx.get(
            f"http://127.0.0.1:{port}/api/v1/query", params={"query": expr}, timeout=5
        )
    except httpx.TransportError:
        return []  # not listening yet
    body = response.json()
    assert body["status"] == "success", (expr, body)
    return body["data"]["result"]


async def test_every_operator_panel_returns_series(stack, own_api, tmp_path):
    emu, url, kube = own_api
    metrics_port, prometheus_port = free_port(), free_port()
    log = (tmp_path / "operator.log").open("w")
    operator = spawn(stack, url, log, METRICS_PORT=str(metrics_port), HEALTH_PORT=str(free_port()))
    scraper = prometheus(tmp_path, f"127.0.0.1:{metrics_port}", prometheus_port)
    try:
        await wait_for(lambda: watching(emu, "merchants", "plans"), timeout=30)
        plan_name, good, stuck = unique("dash"), unique("dashok"), unique("dashstuck")
        await kube.create(PLANS, plan(plan_name, 50, 100))
        await kube.create(MERCHANTS, merchant(good, plan_name), NS)
        await kube.create(MERCHANTS, merchant(stuck, unique("no-such-plan")), NS)
        await ready(kube, good)

        wanted = grafana.queries(grafana.documents()["operator"], rate_interval="30s")
        assert len(wanted) >= 3

        def empty() -> list[str]:
            return [title for title, expr in wanted if not series(prometheus_port, expr)]

        async def all_answer() -> bool:
            return not await asyncio.to_thread(empty)

        try:
            await wait_for(all_answer, timeout=60, interval=0.5)
        except TimeoutError:
            pytest.fail(f"operator panels without series: {empty()}")
    finally:
        stop(scraper)
        stop(operator)
