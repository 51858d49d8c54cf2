"""Charts built once per session (library and subcharts vendored as `helm dependency build`
would) and rendered once per values set; every test reads those renders."""

import base64
import shutil
from functools import cache
from pathlib import Path

import helm_python as helm
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHARTS = REPO / "charts"
LIBRARY = "payplane-lib"
UMBRELLA = "payplane"
SERVICE_CHARTS = sorted(
    p.name
    for p in CHARTS.iterdir()
    if (p / "Chart.yaml").exists() and p.name not in (LIBRARY, UMBRELLA)
)
# The umbrella's toggles: one per component (subchart or alias).
COMPONENT_TOGGLES = [
    "payments",
    "merchants",
    "gateway",
    "providers",
    "webhooks",
    "relay",
    "notifier",
    "sim-a",
    "sim-b",
    "ingress",
    "operator",
]
VALUES_FILES = {"default": None, "kind": "values-kind.yaml", "prod": "values-prod.yaml"}
RELEASE, NAMESPACE = "payplane", "payplane"


def build_charts(destination: Path, source: Path = CHARTS) -> Path:
    """A copy of charts/ with every file:// dependency vendored into each chart's charts/
    (any charts/*/charts left by a local `helm dependency build` is ignored: it may be stale)."""
    shutil.copytree(source, destination, ignore=shutil.ignore_patterns("charts", "Chart.lock"))
    library = helm.Chart.load(destination / LIBRARY)
    for name in [*SERVICE_CHARTS, UMBRELLA]:
        (destination / name / "charts").mkdir(exist_ok=True)
        library.save(destination / name / "charts")
    for name in SERVICE_CHARTS:
        helm.Chart.load(destination / name).save(destination / UMBRELLA / "charts")
    return destination


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> Path:
    return build_charts(tmp_path_factory.mktemp("charts") / "charts")


def load_values(name: str | None) -> dict:
    if name is None:
        return {}
    return yaml.safe_load((CHARTS / UMBRELLA / name).read_text()) or {}


def docs_of(rendered: dict[str, str]) -> list[dict]:
    docs = []
    for source, text in sorted(rendered.items()):
        if source.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                doc.setdefault("metadata", {}).setdefault("annotations", {})
                docs.append(doc | {"__source__": source})
    return docs


class Renderer:
    def __init__(self, root: Path):
        self.root = root

    @cache  # noqa: B019 - one renderer per session
    def _render(self, chart: str, values_key: str) -> tuple[dict[str, str], ...]:
        values = yaml.safe_load(values_key) or {}
        rendered = helm.Chart.load(self.root / chart).render(
            values, name=RELEASE, namespace=NAMESPACE, is_install=True
        )
        return (rendered,)

    def raw(self, chart: str = UMBRELLA, values: dict | None = None) -> dict[str, str]:
        return self._render(chart, yaml.safe_dump(values or {}, sort_keys=True))[0]

    def docs(self, chart: str = UMBRELLA, values: dict | None = None) -> list[dict]:
        return [
            {k: v for k, v in doc.items() if k != "__source__"}
            for doc in docs_of(self.raw(chart, values))
        ]


@pytest.fixture(scope="session")
def renderer(built) -> Renderer:
    return Renderer(built)


@pytest.fixture(scope="session", params=list(VALUES_FILES))
def profile(request, renderer) -> tuple[str, list[dict]]:
    """(name, rendered objects) of the umbrella with default, kind and prod values."""
    return request.param, renderer.docs(values=load_values(VALUES_FILES[request.param]))


def all_profiles(renderer) -> dict[str, list[dict]]:
    return {name: renderer.docs(values=load_values(f)) for name, f in VALUES_FILES.items()}


def rendered_secrets(docs: list[dict]) -> dict[tuple[str, str], str]:
    """(Secret name, key) → value of every Secret the chart itself generates."""
    return {
        (doc["metadata"]["name"], key): base64.b64decode(value).decode()
        for doc in docs
        if doc["kind"] == "Secret"
        for key, value in doc.get("data", {}).items()
    }
