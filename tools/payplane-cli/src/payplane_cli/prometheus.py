"""The local Prometheus (Debian package): scrapes every process of the stack, Envoy's admin
``/stats/prometheus`` included, and evaluates the chart's own rule files."""

import json
import shutil
from pathlib import Path

BASE_PORT = 9090
REPO = Path(__file__).resolve().parents[4]
RULES = REPO / "charts" / "payplane" / "rules"


def data_dir(stack) -> Path:
    return stack.state_dir / "prometheus"


def config(stack) -> dict:
    from payplane_cli import ingress
    from payplane_cli.stack import PROCESSES

    jobs = [
        {
            "job_name": name,
            "static_configs": [{"targets": [f"127.0.0.1:{stack.port(process.port)}"]}],
        }
        for name, process in PROCESSES.items()
        if process.port is not None and name not in ("envoy", "prometheus")
    ]
    jobs.append(
        {
            "job_name": "envoy",
            "metrics_path": "/stats/prometheus",
            "static_configs": [{"targets": [f"127.0.0.1:{stack.port(ingress.ADMIN_PORT)}"]}],
        }
    )
    return {
        "global": {
            "scrape_interval": stack.scrape_interval,
            "evaluation_interval": stack.scrape_interval,
            "external_labels": {"stack": stack.name},
        },
        "rule_files": [str(RULES / "*.yaml")],
        "scrape_configs": jobs,
    }


def prepare(stack) -> None:
    """Fresh config every start; the test and bench stacks also start from an empty TSDB so
    no series of an earlier run can answer a query."""
    folder = data_dir(stack)
    if stack.name != "local":
        shutil.rmtree(folder / "data", ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "prometheus.yml").write_text(json.dumps(config(stack), indent=1))  # JSON is YAML


def argv(stack) -> list[str]:
    folder = data_dir(stack)
    return [
        shutil.which("prometheus") or "/usr/bin/prometheus",
        f"--config.file={folder / 'prometheus.yml'}",
        f"--storage.tsdb.path={folder / 'data'}",
        "--storage.tsdb.retention.time=7d",
        f"--web.listen-address=127.0.0.1:{stack.port(BASE_PORT)}",
        "--enable-feature=exemplar-storage",
        "--log.level=warn",
    ]
