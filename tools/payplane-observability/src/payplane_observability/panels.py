"""Small builders over grafana-foundation-sdk: every panel gets a unit and a description."""

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.models.dashboard import (
    DashboardLinkType,
    DataSourceRef,
    VariableHide,
)

DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
TAG = "payplane"
WINDOW = "$__rate_interval"
# Where "open this trace" goes: Grafana Explore on the traces datasource chosen in $traces.
TRACE_URL = (
    '/explore?left={"datasource":"${traces}","queries":[{"refId":"A","queryType":"traceql",'
    '"query":"${trace_id}"}]}'
)


def query(expr: str, legend: str = "", *, ref: str = "A", exemplar: bool = False):
    target = prometheus.Dataquery().expr(expr).ref_id(ref).legend_format(legend or "__auto").range()
    return target.exemplar(True) if exemplar else target


def series(title: str, description: str, unit: str, *targets, width: int = 12):
    """A time series panel; histogram quantiles get exemplars (linked to their traces)."""
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .datasource(DATASOURCE)
        .height(8)
        .span(width)
    )
    for index, (expr, legend) in enumerate(targets):
        exemplar = "histogram_quantile" in expr
        panel = panel.with_target(query(expr, legend, ref=chr(65 + index), exemplar=exemplar))
    return panel


def single(title: str, description: str, unit: str, expr: str, *, width: int = 6):
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .datasource(DATASOURCE)
        .height(5)
        .span(width)
        .with_target(query(expr).instant())
    )


def row(title: str):
    return dash.Row(title)


def board(uid: str, title: str, description: str, *items) -> dash.Dashboard:
    """One dashboard: shared variables, links to every other payplane dashboard and to traces."""
    builder = (
        dash.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags([TAG])
        .editable()
        .time("now-1h", "now")
        .refresh("30s")
        .timezone("browser")
        .with_variable(dash.DatasourceVariable("datasource").label("Prometheus").type("prometheus"))
        .with_variable(dash.DatasourceVariable("traces").label("Traces").type("tempo"))
        .with_variable(
            dash.TextBoxVariable("trace_id").label("Trace id").hide(VariableHide.DONT_HIDE)
        )
        .link(
            dash.DashboardLink("payplane")
            .type(DashboardLinkType.DASHBOARDS)
            .tags([TAG])
            .as_dropdown(True)
            .include_vars(True)
            .keep_time(True)
        )
        .link(
            dash.DashboardLink("Open trace ${trace_id}")
            .type(DashboardLinkType.LINK)
            .url(TRACE_URL)
            .target_blank(True)
            .tooltip("Paste a trace_id (log lines, exemplars) above, then open it")
        )
    )
    for item in items:
        builder = builder.with_row(item) if isinstance(item, dash.Row) else builder.with_panel(item)
    return builder
