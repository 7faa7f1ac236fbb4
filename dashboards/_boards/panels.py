"""Panel builders: Prometheus targets on the ``$datasource`` variable and the time
series, stat, state timeline and table panels the boards are made of."""

from __future__ import annotations

from collections.abc import Sequence

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import prometheus as pb
from grafana_foundation_sdk.builders import stat, statetimeline, table, timeseries
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import prometheus as pm

DS = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")


def target(
    expr: str, legend: str = "", ref: str = "A", *, instant: bool = False, table_: bool = False
) -> pb.Dataquery:
    """A Prometheus query on the $datasource variable."""
    t = pb.Dataquery().expr(expr).ref_id(ref).datasource(DS).editor_mode(pm.QueryEditorMode.CODE)
    if legend:
        t = t.legend_format(legend)
    t = t.instant() if instant else t.range()
    if table_:
        t = t.format(pm.PromQueryFormat.TABLE)
    return t


def legend() -> cb.VizLegendOptions:
    return (
        cb.VizLegendOptions()
        .display_mode(common.LegendDisplayMode.TABLE)
        .placement(common.LegendPlacement.BOTTOM)
        .show_legend(True)
        .calcs(["mean", "lastNotNull"])
    )


def ts(
    title: str,
    description: str,
    targets: Sequence[pb.Dataquery],
    *,
    unit: str = "short",
    lo: float | None = None,
    hi: float | None = None,
    stack: bool = False,
) -> timeseries.Panel:
    """A time series panel."""
    p = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DS)
        .targets(list(targets))
        .unit(unit)
        .legend(legend())
        .tooltip(cb.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI))
        .line_width(1)
        .fill_opacity(10 if stack else 0)
        .show_points(common.VisibilityMode.NEVER)
    )
    if lo is not None:
        p = p.min(lo)
    if hi is not None:
        p = p.max(hi)
    if stack:
        p = p.stacking(cb.StackingConfig().mode(common.StackingMode.NORMAL))
    return p


def stat_panel(
    title: str, description: str, expr: str, *, unit: str, decimals: int = 2
) -> stat.Panel:
    """A single-number panel over the dashboard's time range."""
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DS)
        .targets([target(expr, instant=True)])
        .unit(unit)
        .decimals(decimals)
        .graph_mode(common.BigValueGraphMode.NONE)
        .color_mode(common.BigValueColorMode.VALUE)
        .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )


def state_panel(
    title: str, description: str, expr: str, legend_: str, states: dict[str, tuple[str, str]]
) -> statetimeline.Panel:
    """A state timeline with value → (text, color) mappings."""
    mapping = dm.ValueMap(
        options={
            value: dm.ValueMappingResult(text=text, color=color, index=i)
            for i, (value, (text, color)) in enumerate(states.items())
        }
    )
    return (
        statetimeline.Panel()
        .title(title)
        .description(description)
        .datasource(DS)
        .targets([target(expr, legend_)])
        .unit("none")
        .mappings([mapping])
        .show_value(common.VisibilityMode.NEVER)
        .merge_values(True)
        .row_height(0.8)
        .line_width(0)
        .fill_opacity(70)
        .legend(
            cb.VizLegendOptions()
            .show_legend(False)
            .display_mode(common.LegendDisplayMode.HIDDEN)
            .placement(common.LegendPlacement.BOTTOM)
        )
    )


def table_panel(
    title: str,
    description: str,
    targets: Sequence[pb.Dataquery],
    *,
    unit: str = "short",
    transformations: Sequence[dm.DataTransformerConfig] = (),
) -> table.Panel:
    """An instant-query table."""
    p = (
        table.Panel()
        .title(title)
        .description(description)
        .datasource(DS)
        .targets(list(targets))
        .unit(unit)
        .decimals(3)
        .align(common.FieldTextAlignment.AUTO)
        .inspect(False)
    )
    for t in transformations:
        p = p.with_transformation(t)
    return p
