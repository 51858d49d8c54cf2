"""Reading the generated dashboards as Grafana would: panels, and queries with Grafana's own
variables replaced by what Grafana would put there."""

import json
from pathlib import Path

FOLDER = Path(__file__).resolve().parents[2] / "charts" / "payplane" / "dashboards"


def documents() -> dict[str, dict]:
    return {path.stem: json.loads(path.read_text()) for path in sorted(FOLDER.glob("*.json"))}


def panels(document: dict) -> list[dict]:
    return [p for p in document["panels"] if p.get("type") != "row"]


def queries(document: dict, rate_interval: str = "1m") -> list[tuple[str, str]]:
    """(panel title, PromQL ready for Prometheus) for every target of every panel."""
    return [
        (panel["title"], target["expr"].replace("$__rate_interval", rate_interval))
        for panel in panels(document)
        for target in panel["targets"]
    ]
