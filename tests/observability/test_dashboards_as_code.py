"""Dashboards: in step with their generator, every panel explained, linked to each other and
to traces, every query valid PromQL."""

import promql_parser
import pytest
from payplane_observability.dashboards import DASHBOARDS

from tests.observability import grafana
from tests.observability.grafana import FOLDER, panels


@pytest.fixture(scope="module")
def documents() -> dict[str, dict]:
    return grafana.documents()


def test_the_five_dashboards_exist_and_nothing_else(documents):
    assert sorted(p.stem for p in FOLDER.glob("*.json")) == sorted(DASHBOARDS)
    assert len({d["uid"] for d in documents.values()}) == len(DASHBOARDS)


def test_every_panel_has_a_unit_a_description_and_valid_queries(documents):
    for name, document in documents.items():
        assert panels(document), name
        for panel in panels(document):
            where = (name, panel["title"])
            assert panel.get("description"), where
            assert panel["fieldConfig"]["defaults"].get("unit"), where
            assert panel["targets"], where
        for _, expr in grafana.queries(document):
            promql_parser.parse(expr)  # raises on invalid PromQL


def test_dashboards_link_each_other_and_traces(documents):
    for name, document in documents.items():
        links = document["links"]
        assert any(link["type"] == "dashboards" and "payplane" in link["tags"] for link in links)
        assert any("${trace_id}" in link.get("url", "") for link in links), name
        variables = {v["name"] for v in document["templating"]["list"]}
        assert {"datasource", "traces", "trace_id"} <= variables
        # Every dashboard carries the tag the others' dashboard links select on.
        assert "payplane" in document["tags"]
