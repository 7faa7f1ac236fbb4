"""Generate the rag-sidecar Grafana dashboards (Grafana JSON model) from code.

    python dashboards/generate.py            # (re)write dashboards/*.json
    python dashboards/generate.py --check    # exit 1 if the committed JSON is stale

Built with grafana-foundation-sdk (the 11.6 build: schemaVersion 41). The output is
deterministic: panel ids are assigned in order, keys are sorted, nothing depends on time.
Every query goes to the ``$datasource`` variable (type prometheus). The quality variables
``app``, ``model`` and ``prompt_version`` are multi-value, so every selector uses ``=~``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus as pb
from grafana_foundation_sdk.builders import stat, statetimeline, table, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import prometheus as pm

HERE = Path(__file__).resolve().parent
DS = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")
CANARY_APP = "rag-sidecar-canary"

# Label selectors shared by the panels.
Q = 'app=~"$app", model=~"$model", prompt_version=~"$prompt_version"'
QA = 'app=~"$app"'
QAM = 'app=~"$app", model=~"$model"'
QI = 'job=~"$job", instance=~"$instance"'
R = "$__rate_interval"
AMP = "app, model, prompt_version"
LEG_AMP = "{{app}} / {{model}} / {{prompt_version}}"

CONTEXT_SCORES = ("context_relevance", "context_precision", "context_ndcg", "context_sufficiency")
REFERENCE_SCORES = ("answer_correctness", "context_recall")
HEURISTIC_RATIOS = (
    "groundedness_lexical",
    "answer_query_overlap",
    "context_query_overlap",
    "conciseness",
    "citation_validity",
    "context_redundancy",
)
RETRIEVAL_SCORES = ("retrieval_top_score", "retrieval_mean_score", "retrieval_score_gap")


# ---------------------------------------------------------------------- PromQL helpers


def rx(names: Sequence[str]) -> str:
    """A regex alternation for a label matcher."""
    return "|".join(names)


def mean(metric: str, by: str = AMP, sel: str = Q, window: str = R) -> str:
    """Mean of a rag_sidecar_score metric: rate(sum) / rate(count)."""
    m = f'metric=~"{metric}", {sel}' if "|" in metric else f'metric="{metric}", {sel}'
    return (
        f"sum by ({by}) (rate(rag_sidecar_score_sum{{{m}}}[{window}]))"
        f" / sum by ({by}) (rate(rag_sidecar_score_count{{{m}}}[{window}]))"
    )


def range_mean(metric: str) -> str:
    """Mean of a score over the dashboard's time range (one number)."""
    m = f'metric="{metric}", {Q}'
    return (
        f"sum(increase(rag_sidecar_score_sum{{{m}}}[$__range]))"
        f" / sum(increase(rag_sidecar_score_count{{{m}}}[$__range]))"
    )


def quantile(q: float, family: str, metric: str, sel: str = Q) -> str:
    """histogram_quantile of a score (or count) histogram over the selection."""
    return (
        f"histogram_quantile({q}, sum by (le) "
        f'(rate({family}_bucket{{metric="{metric}", {sel}}}[{R}])))'
    )


SCORED = f'rate(rag_sidecar_count_count{{metric="answer_length", {Q}}}[{R}])'
SCORED_APP = f'rate(rag_sidecar_count_count{{metric="answer_length", {QA}}}[{R}])'
JUDGED = f'rate(rag_sidecar_score_count{{metric="answer_relevance", {Q}}}[{R}])'


# ---------------------------------------------------------------------- panel helpers


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


# ---------------------------------------------------------------------- dashboards


class Board:
    """A dashboard under construction: assigns panel ids in order, lays out rows."""

    def __init__(self, uid: str, title: str, description: str, tags: list[str]) -> None:
        self.b = (
            db.Dashboard(title)
            .uid(uid)
            .description(description)
            .tags(tags)
            .editable()
            .tooltip(dm.DashboardCursorSync.CROSSHAIR)
            .time("now-6h", "now")
            .refresh("1m")
            .timezone("browser")
            .annotation(
                db.AnnotationQuery()
                .name("Annotations & Alerts")
                .datasource(dm.DataSourceRef(type_val="grafana", uid="-- Grafana --"))
                .enable(True)
                .hide(True)
                .icon_color("rgba(0, 211, 255, 1)")
                .type("dashboard")
                .built_in(1)
            )
            .link(
                db.DashboardLink("rag-sidecar")
                .type(dm.DashboardLinkType.DASHBOARDS)
                .tags(["rag-sidecar"])
                .as_dropdown(False)
                .include_vars(True)
                .keep_time(True)
            )
        )
        self._id = 0

    def _next(self) -> int:
        self._id += 1
        return self._id

    def variables(self, *variables: Any) -> Board:
        for v in variables:
            self.b = self.b.with_variable(v)
        return self

    def row(self, title: str) -> Board:
        self.b = self.b.with_row(db.Row(title).id(self._next()))
        return self

    def add(self, panel: Any, w: int = 12, h: int = 8) -> Board:
        self.b = self.b.with_panel(panel.id(self._next()).span(w).height(h))
        return self

    def build(self) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(json.dumps(self.b.build(), cls=JSONEncoder))
        return out


def datasource_var() -> db.DatasourceVariable:
    return db.DatasourceVariable("datasource").label("Data source").type("prometheus")


def query_var(name: str, label: str, query: str, *, multi: bool = True) -> db.QueryVariable:
    return (
        db.QueryVariable(name)
        .label(label)
        .datasource(DS)
        .query(query)
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dm.VariableSort.ALPHABETICAL_ASC)
        .multi(multi)
        .include_all(True)
        .current(dm.VariableOption(selected=True, text=["All"], value=["$__all"]))
    )


def quality_vars() -> list[db.QueryVariable]:
    """app, model, prompt_version: chained label_values over the score histogram."""
    return [
        query_var(
            "app", "App", f'label_values(rag_sidecar_score_count{{app!="{CANARY_APP}"}}, app)'
        ),
        query_var("model", "Model", f"label_values(rag_sidecar_score_count{{{QA}}}, model)"),
        query_var(
            "prompt_version",
            "Prompt version",
            f"label_values(rag_sidecar_score_count{{{QAM}}}, prompt_version)",
        ),
    ]


def overview() -> dict[str, Any]:
    """Answer quality: scores per app/model/prompt_version, sampling, flags, feedback, drift."""
    d = Board(
        "rag-sidecar-overview",
        "rag-sidecar / Overview",
        "Answer quality measured by rag-sidecar: heuristic scores on every trace, LLM-judge "
        "scores on a sample, user feedback, drift and the version A/B readout.",
        ["rag-sidecar", "rag", "quality"],
    ).variables(datasource_var(), *quality_vars())

    d.row("Summary")
    d.add(
        stat_panel(
            "Traces scored",
            "Traces scored per second (heuristics run on every trace).",
            f"sum({SCORED})",
            unit="ops",
        ),
        4,
        4,
    )
    d.add(
        stat_panel(
            "Traces judged",
            "Judge events per second (sampled traces the LLM judge scored).",
            f"sum({JUDGED})",
            unit="ops",
        ),
        4,
        4,
    )
    d.add(
        stat_panel(
            "Faithfulness (range)",
            "Mean judge faithfulness over the dashboard's time range.",
            range_mean("faithfulness"),
            unit="none",
        ),
        4,
        4,
    )
    d.add(
        stat_panel(
            "Groundedness (range)",
            "Mean lexical groundedness over the dashboard's time range (every trace).",
            range_mean("groundedness_lexical"),
            unit="none",
        ),
        4,
        4,
    )
    d.add(
        stat_panel(
            "Thumbs-down share (range)",
            "Thumbs-down votes over all thumbs votes in the time range.",
            f'sum(increase(rag_sidecar_feedback_total{{value="down", {Q}}}[$__range]))'
            f' / sum(increase(rag_sidecar_feedback_total{{value=~"up|down", {Q}}}[$__range]))',
            unit="percentunit",
            decimals=1,
        ),
        4,
        4,
    )
    d.add(
        stat_panel(
            "Drift alarms",
            "Drift detectors currently in alarm (any test, any score) for the selection.",
            f"sum(max by ({AMP}, metric, test) (rag_sidecar_drift_detected{{{Q}}}))",
            unit="none",
            decimals=0,
        ),
        4,
        4,
    )

    d.row("LLM judge scores")
    for metric, title in (
        ("faithfulness", "Faithfulness"),
        ("answer_relevance", "Answer relevance"),
    ):
        d.add(
            ts(
                f"{title} (mean)",
                f"Mean judge {metric} per app / model / prompt_version: "
                "rate(sum) / rate(count) of rag_sidecar_score.",
                [target(mean(metric), LEG_AMP)],
                unit="none",
                lo=0,
                hi=1,
            )
        )
    d.add(
        ts(
            "Faithfulness quantiles",
            "p10 / p50 / p90 of judge faithfulness over the selection (histogram buckets).",
            [
                target(quantile(q, "rag_sidecar_score", "faithfulness"), f"p{int(q * 100)}", ref)
                for q, ref in ((0.1, "A"), (0.5, "B"), (0.9, "C"))
            ],
            unit="none",
            lo=0,
            hi=1,
        )
    )
    d.add(
        ts(
            "Context quality (judge)",
            "Mean of the judge's context scores over the selection: relevance, precision@k, "
            "nDCG@k, sufficiency.",
            [target(mean(rx(CONTEXT_SCORES), by="metric"), "{{metric}}")],
            unit="none",
            lo=0,
            hi=1,
        )
    )
    d.add(
        ts(
            "Reference-based scores (judge)",
            "answer_correctness and context_recall, only for traces that carry a reference.",
            [target(mean(rx(REFERENCE_SCORES), by="app, metric"), "{{app}} / {{metric}}")],
            unit="none",
            lo=0,
            hi=1,
        )
    )
    d.add(
        ts(
            "Judge vs users (AUROC)",
            "How well judge faithfulness predicts a thumbs-up (0.5 = no better than chance; "
            "NaN until both classes are in the window).",
            [
                target(
                    f"rag_sidecar_judge_feedback_auroc{{{QA}}}",
                    "{{app}} / {{judge}}",
                )
            ],
            unit="none",
            lo=0,
            hi=1,
        )
    )

    d.row("Heuristic scores (every trace)")
    for metric, title in (
        ("groundedness_lexical", "Groundedness, lexical"),
        ("answer_query_overlap", "Answer-query overlap"),
        ("context_query_overlap", "Context-query overlap"),
    ):
        d.add(
            ts(
                f"{title} (mean)",
                f"Mean {metric} per app / model / prompt_version.",
                [target(mean(metric), LEG_AMP)],
                unit="none",
                lo=0,
                hi=1,
            )
        )
    d.add(
        ts(
            "Groundedness quantiles",
            "p10 / p50 / p90 of groundedness_lexical over the selection.",
            [
                target(
                    quantile(q, "rag_sidecar_score", "groundedness_lexical"),
                    f"p{int(q * 100)}",
                    ref,
                )
                for q, ref in ((0.1, "A"), (0.5, "B"), (0.9, "C"))
            ],
            unit="none",
            lo=0,
            hi=1,
        )
    )
    d.add(
        ts(
            "All ratio heuristics (mean)",
            "Mean of each 0-1 heuristic over the selection.",
            [target(mean(rx(HEURISTIC_RATIOS), by="metric"), "{{metric}}")],
            unit="none",
            lo=0,
            hi=1,
        )
    )
    d.add(
        ts(
            "Retrieval scores (mean)",
            "Retriever similarities in the retriever's own units: best chunk, mean chunk, "
            "top-1 minus top-2.",
            [target(mean(rx(RETRIEVAL_SCORES), by="metric"), "{{metric}}")],
            unit="none",
        )
    )
    d.add(
        ts(
            "Answer length and chunks retrieved",
            "Answer length in word tokens (p50, p95) and mean chunks retrieved "
            "(rag_sidecar_count).",
            [
                target(quantile(0.5, "rag_sidecar_count", "answer_length"), "answer p50", "A"),
                target(quantile(0.95, "rag_sidecar_count", "answer_length"), "answer p95", "B"),
                target(
                    f'sum(rate(rag_sidecar_count_sum{{metric="retrieval_count", {Q}}}[{R}]))'
                    f' / sum(rate(rag_sidecar_count_count{{metric="retrieval_count", {Q}}}[{R}]))',
                    "chunks (mean)",
                    "C",
                ),
            ],
            unit="short",
        )
    )

    d.row("Sampling and judge coverage")
    d.add(
        ts(
            "Sampled for the judge, by reason",
            "Traces selected for the judge per second, by reason (a trace may have several; "
            "all apps).",
            [target(f"sum by (reason) (rate(rag_sidecar_sampled_total[{R}]))", "{{reason}}")],
            unit="ops",
        )
    )
    d.add(
        ts(
            "Scored and judged traces",
            "Traces scored (heuristics) and judged (LLM judge) per second, per app.",
            [
                target(f"sum by (app) ({SCORED})", "{{app}} scored", "A"),
                target(f"sum by (app) ({JUDGED})", "{{app}} judged", "B"),
            ],
            unit="ops",
        )
    )
    d.add(
        ts(
            "Judge coverage",
            "Share of scored traces judged in the random sample, per app (traces judged only "
            "for a priority reason are in rag_sidecar_judge_priority_score).",
            [target(f"sum by (app) ({JUDGED}) / sum by (app) ({SCORED})", "{{app}}")],
            unit="percentunit",
            lo=0,
        )
    )

    d.row("Flags")
    d.add(
        ts(
            "Flag rate",
            "Flags raised per scored trace, by flag (judge_* flags are per judged trace but "
            "divided by scored traces too). Flags are counted per app only: the model and "
            "prompt_version filters do not apply here.",
            [
                target(
                    f"sum by (flag) (rate(rag_sidecar_flags_total{{{QA}}}[{R}]))"
                    f" / on () group_left () sum({SCORED_APP})",
                    "{{flag}}",
                )
            ],
            unit="percentunit",
            lo=0,
        )
    )
    d.add(
        table_panel(
            "Flags in the time range",
            "Flags raised per app over the dashboard's time range.",
            [
                target(
                    f"sort_desc(sum by (app, flag) "
                    f"(increase(rag_sidecar_flags_total{{{QA}}}[$__range])))",
                    instant=True,
                    table_=True,
                )
            ],
            transformations=[
                dm.DataTransformerConfig(
                    id_val="organize",
                    options={"excludeByName": {"Time": True}, "renameByName": {"Value": "flags"}},
                )
            ],
        )
    )

    d.row("User feedback")
    d.add(
        ts(
            "Thumbs votes",
            "Thumbs up and down per second, per app / model.",
            [
                target(
                    f"sum by (app, model, value) "
                    f'(rate(rag_sidecar_feedback_total{{value=~"up|down", {Q}}}[{R}]))',
                    "{{app}} / {{model}} {{value}}",
                )
            ],
            unit="ops",
        ),
        8,
    )
    d.add(
        ts(
            "Thumbs-down share",
            "Thumbs-down votes over thumbs votes, per app / model.",
            [
                target(
                    f"sum by (app, model) "
                    f'(rate(rag_sidecar_feedback_total{{value="down", {Q}}}[{R}]))'
                    f" / sum by (app, model) "
                    f'(rate(rag_sidecar_feedback_total{{value=~"up|down", {Q}}}[{R}]))',
                    "{{app}} / {{model}}",
                )
            ],
            unit="percentunit",
            lo=0,
            hi=1,
        ),
        8,
    )
    d.add(
        ts(
            "Mean rating",
            "Mean user rating per app / model (rag_sidecar_feedback_rating).",
            [
                target(
                    f"sum by (app, model) (rate(rag_sidecar_feedback_rating_sum{{{Q}}}[{R}]))"
                    f" / sum by (app, model) "
                    f"(rate(rag_sidecar_feedback_rating_count{{{Q}}}[{R}]))",
                    "{{app}} / {{model}}",
                )
            ],
            unit="short",
        ),
        8,
    )

    d.row("Drift and versions")
    d.add(
        state_panel(
            "Drift detectors",
            "rag_sidecar_drift_detected per series and test: 1 while the test is in alarm.",
            f"max by ({AMP}, metric, test) (rag_sidecar_drift_detected{{{Q}}})",
            f"{LEG_AMP} {{{{metric}}}} {{{{test}}}}",
            {"0": ("ok", "green"), "1": ("drift", "red")},
        ),
        24,
        10,
    )
    d.add(
        ts(
            "Drift statistics",
            "Latest statistic of each drift test (psi, ks D, Welch t, chi2, Page-Hinkley / "
            "CUSUM in sigma units).",
            [
                target(
                    f"max by ({AMP}, metric, test) "
                    f'(rag_sidecar_drift{{test!="version_diff", {Q}}})',
                    f"{LEG_AMP} {{{{metric}}}} {{{{test}}}}",
                )
            ],
            unit="none",
        )
    )
    d.add(
        ts(
            "Window means",
            "Mean of the latest closed drift window per series (a rate for thumbs_down and "
            "flag:* series).",
            [
                target(
                    f"max by ({AMP}, metric) (rag_sidecar_window_mean{{{Q}}})",
                    f"{LEG_AMP} {{{{metric}}}}",
                )
            ],
            unit="none",
        )
    )
    d.add(
        table_panel(
            "Version A/B readout",
            "Candidate minus baseline mean per app and score, with its confidence interval, "
            "and the values on each side. Variants read model/prompt_version.",
            [
                target(
                    f"max by (app, metric, baseline, candidate) "
                    f'(rag_sidecar_version_diff{{bound="{b}", {QA}}})',
                    ref=ref,
                    instant=True,
                    table_=True,
                )
                for b, ref in (("estimate", "A"), ("low", "B"), ("high", "C"))
            ]
            + [
                target(
                    f"max by (app, metric, baseline, candidate) "
                    f'(rag_sidecar_version_samples{{side="{s}", {QA}}})',
                    ref=ref,
                    instant=True,
                    table_=True,
                )
                for s, ref in (("baseline", "D"), ("candidate", "E"))
            ],
            unit="none",
            transformations=[
                dm.DataTransformerConfig(id_val="merge", options={}),
                dm.DataTransformerConfig(
                    id_val="organize",
                    options={
                        "excludeByName": {"Time": True},
                        "renameByName": {
                            "Value #A": "diff",
                            "Value #B": "CI low",
                            "Value #C": "CI high",
                            "Value #D": "n baseline",
                            "Value #E": "n candidate",
                        },
                    },
                ),
            ],
        ),
        24,
        8,
    )
    return d.build()


def operations() -> dict[str, Any]:
    """The sidecar as a service: throughput, queues, Kafka, OTLP, judge, drift monitor."""
    d = Board(
        "rag-sidecar-operations",
        "rag-sidecar / Operations",
        "rag-sidecar as a service: throughput, queues, Kafka lag, OTLP ingestion, the LLM "
        "judge (latency, tokens, cost, errors, breaker, skips) and dead letters.",
        ["rag-sidecar", "rag", "operations"],
    ).variables(
        datasource_var(),
        query_var("job", "Job", "label_values(rag_sidecar_build_info, job)"),
        query_var(
            "instance", "Instance", 'label_values(rag_sidecar_build_info{job=~"$job"}, instance)'
        ),
        *quality_vars(),
    )

    d.row("Throughput")
    d.add(
        ts(
            "Records by outcome",
            "Records processed per second, by source and outcome (scored, invalid, dropped).",
            [
                target(
                    f"sum by (source, outcome) (rate(rag_sidecar_traces_total{{{QI}}}[{R}]))",
                    "{{source}} {{outcome}}",
                )
            ],
            unit="ops",
            stack=True,
        ),
        8,
    )
    d.add(
        ts(
            "Scored traces by app / model / prompt_version",
            "Traces scored per second for the selected app, model and prompt_version.",
            [
                target(
                    f"sum by ({AMP}) (rate(rag_sidecar_count_count"
                    f'{{metric="answer_length", {Q}, {QI}}}[{R}]))',
                    LEG_AMP,
                )
            ],
            unit="ops",
        ),
        8,
    )
    d.add(
        ts(
            "Dead letters by reason",
            "Invalid records sent to the dead-letter sink per second, by reason.",
            [
                target(
                    f"sum by (reason) (rate(rag_sidecar_dead_letters_total{{{QI}}}[{R}]))",
                    "{{reason}}",
                )
            ],
            unit="ops",
        ),
        8,
    )
    d.add(
        ts(
            "Dropped records by stage",
            "Records dropped because a queue was full (only with pipeline.overflow: drop).",
            [
                target(
                    f"sum by (stage) (rate(rag_sidecar_queue_dropped_total{{{QI}}}[{R}]))",
                    "{{stage}}",
                )
            ],
            unit="ops",
        ),
        8,
    )
    d.add(
        ts(
            "Processing latency",
            "Arrival to results written, p50 / p95 / p99 (rag_sidecar_processing_seconds).",
            [
                target(
                    f"histogram_quantile({q}, sum by (le) "
                    f"(rate(rag_sidecar_processing_seconds_bucket{{{QI}}}[{R}])))",
                    f"p{int(q * 100)}",
                    ref,
                )
                for q, ref in ((0.5, "A"), (0.95, "B"), (0.99, "C"))
            ],
            unit="s",
        ),
        8,
    )
    d.add(
        table_panel(
            "Build",
            "Sidecar version and heuristics scorer version per instance.",
            [target(f"rag_sidecar_build_info{{{QI}}}", instant=True, table_=True)],
            transformations=[
                dm.DataTransformerConfig(
                    id_val="organize",
                    options={"excludeByName": {"Time": True, "Value": True, "__name__": True}},
                )
            ],
        ),
        8,
    )

    d.row("Pipeline")
    d.add(
        ts(
            "Queue depth vs capacity",
            "Batches waiting in front of each stage and the queue's capacity.",
            [
                target(
                    f"max by (instance, stage) (rag_sidecar_queue_depth{{{QI}}})",
                    "{{instance}} {{stage}} depth",
                    "A",
                ),
                target(
                    f"max by (stage) (rag_sidecar_queue_capacity{{{QI}}})",
                    "{{stage}} capacity",
                    "B",
                ),
            ],
            unit="short",
            lo=0,
        ),
        8,
    )
    d.add(
        ts(
            "Queue fill",
            "Queue depth over capacity per instance and stage (alert at 80% for 25 minutes).",
            [
                target(
                    f"max by (instance, stage) (rag_sidecar_queue_depth{{{QI}}})"
                    f" / on (instance, stage) max by (instance, stage) "
                    f"(rag_sidecar_queue_capacity{{{QI}}})",
                    "{{instance}} {{stage}}",
                )
            ],
            unit="percentunit",
            lo=0,
            hi=1,
        ),
        8,
    )
    d.add(
        ts(
            "Sink errors",
            "Sink write failures per second, by sink and kind (retryable, permanent).",
            [
                target(
                    f"sum by (sink, kind) (rate(rag_sidecar_sink_errors_total{{{QI}}}[{R}]))",
                    "{{sink}} {{kind}}",
                )
            ],
            unit="ops",
        ),
        8,
    )
    d.add(
        ts(
            "Label values folded into 'other'",
            "Producer label values over http.max_label_values, per label.",
            [
                target(
                    f"sum by (label) (rate(rag_sidecar_label_overflow_total{{{QI}}}[{R}]))",
                    "{{label}}",
                )
            ],
            unit="ops",
        ),
        12,
    )
    d.add(
        ts(
            "Drift monitor",
            "Series held by the drift monitor, late values per second, evicted series.",
            [
                target(f"sum(rag_sidecar_drift_series{{{QI}}})", "series held", "A"),
                target(
                    f"sum(rate(rag_sidecar_drift_late_values_total{{{QI}}}[{R}]))",
                    "late values/s",
                    "B",
                ),
                target(
                    f"sum(rate(rag_sidecar_drift_series_evicted_total{{{QI}}}[{R}]))",
                    "evicted/s",
                    "C",
                ),
            ],
            unit="short",
        ),
        12,
    )

    d.row("Kafka")
    d.add(
        ts(
            "Consumer lag per partition",
            "High watermark minus committed offset, per topic and partition.",
            [
                target(
                    f"max by (topic, partition) (rag_sidecar_kafka_lag{{{QI}}})",
                    "{{topic}}/{{partition}}",
                )
            ],
            unit="short",
            lo=0,
        ),
        12,
    )
    d.add(
        ts(
            "In flight and paused",
            "Records read but not yet written, and whether partitions are paused for "
            "backpressure (1).",
            [
                target(
                    f"sum by (instance) (rag_sidecar_kafka_in_flight{{{QI}}})",
                    "{{instance}} in flight",
                    "A",
                ),
                target(
                    f"max by (instance) (rag_sidecar_kafka_paused{{{QI}}})",
                    "{{instance}} paused",
                    "B",
                ),
            ],
            unit="short",
            lo=0,
        ),
        12,
    )
    d.add(
        ts(
            "Commits and rebalances",
            "Offset commits per second by outcome, and partition assignment changes by kind.",
            [
                target(
                    f"sum by (outcome) (rate(rag_sidecar_kafka_commits_total{{{QI}}}[{R}]))",
                    "commit {{outcome}}",
                    "A",
                ),
                target(
                    f"sum by (kind) (rate(rag_sidecar_kafka_rebalances_total{{{QI}}}[{R}]))",
                    "rebalance {{kind}}",
                    "B",
                ),
            ],
            unit="ops",
        ),
        24,
    )

    d.row("OTLP ingestion")
    d.add(
        ts(
            "OTLP requests",
            "Export requests per second, by transport and outcome.",
            [
                target(
                    f"sum by (transport, outcome) "
                    f"(rate(rag_sidecar_otlp_requests_total{{{QI}}}[{R}]))",
                    "{{transport}} {{outcome}}",
                )
            ],
            unit="reqps",
        ),
        8,
    )
    d.add(
        ts(
            "Spans and traces",
            "Spans received and traces assembled per second; late and rejected spans, and "
            "valid spans not kept, by reason (span_limit, late_retrieval: raise "
            "otlp.assembly.settle_s; duplicate: exporter retries).",
            [
                target(f"sum(rate(rag_sidecar_otlp_spans_total{{{QI}}}[{R}]))", "spans", "A"),
                target(
                    f"sum(rate(rag_sidecar_otlp_assembled_total{{{QI}}}[{R}]))",
                    "traces assembled",
                    "B",
                ),
                target(
                    f"sum(rate(rag_sidecar_otlp_late_spans_total{{{QI}}}[{R}]))", "late spans", "C"
                ),
                target(
                    f"sum(rate(rag_sidecar_otlp_rejected_spans_total{{{QI}}}[{R}]))",
                    "rejected spans",
                    "D",
                ),
                target(
                    f"sum by (reason) (rate(rag_sidecar_otlp_spans_dropped_total{{{QI}}}[{R}]))",
                    "not kept: {{reason}}",
                    "E",
                ),
            ],
            unit="ops",
        ),
        8,
    )
    d.add(
        ts(
            "Incomplete traces",
            "Traces given up incomplete per second, by what was missing (root = usually "
            "misrouted spans), and pending traces being assembled.",
            [
                target(
                    f"sum by (missing) (rate(rag_sidecar_otlp_incomplete_total{{{QI}}}[{R}]))",
                    "incomplete, missing {{missing}}",
                    "A",
                ),
                target(f"sum(rag_sidecar_otlp_pending_traces{{{QI}}})", "pending", "B"),
                target(f"sum(rate(rag_sidecar_otlp_evicted_total{{{QI}}}[{R}]))", "evicted/s", "C"),
            ],
            unit="short",
        ),
        8,
    )

    d.row("LLM judge")
    d.add(
        ts(
            "Judge requests by outcome",
            "Judge HTTP attempts per second by outcome (ok, error, timeout, rate_limited, "
            "bad_output, rejected).",
            [
                target(
                    f"sum by (judge, outcome) "
                    f"(rate(rag_sidecar_judge_requests_total{{{QI}}}[{R}]))",
                    "{{judge}} {{outcome}}",
                )
            ],
            unit="reqps",
            stack=True,
        ),
        8,
    )
    d.add(
        ts(
            "Judge error ratio",
            "Share of judge attempts that did not end ok (alert above 20% for 10 minutes).",
            [
                target(
                    f"sum by (judge) "
                    f'(rate(rag_sidecar_judge_requests_total{{outcome!="ok", {QI}}}[{R}]))'
                    f" / sum by (judge) (rate(rag_sidecar_judge_requests_total{{{QI}}}[{R}]))",
                    "{{judge}}",
                )
            ],
            unit="percentunit",
            lo=0,
            hi=1,
        ),
        8,
    )
    d.add(
        ts(
            "Judge latency",
            "Duration of each judge HTTP attempt, p50 and p95.",
            [
                target(
                    f"histogram_quantile({q}, sum by (judge, le) "
                    f"(rate(rag_sidecar_judge_latency_seconds_bucket{{{QI}}}[{R}])))",
                    f"{{{{judge}}}} p{int(q * 100)}",
                    ref,
                )
                for q, ref in ((0.5, "A"), (0.95, "B"))
            ],
            unit="s",
        ),
        8,
    )
    d.add(
        ts(
            "Judge tokens",
            "Tokens per second reported by the endpoint (usage), by kind.",
            [
                target(
                    f"sum by (judge, kind) (rate(rag_sidecar_judge_tokens_total{{{QI}}}[{R}]))",
                    "{{judge}} {{kind}}",
                )
            ],
            unit="short",
            stack=True,
        ),
        8,
    )
    d.add(
        ts(
            "Judge cost",
            "Judge spend in US dollars per hour at the configured prices.",
            [
                target(
                    f"sum by (judge) (rate(rag_sidecar_judge_cost_usd_total{{{QI}}}[{R}])) * 3600",
                    "{{judge}} USD/h",
                )
            ],
            unit="currencyUSD",
        ),
        8,
    )
    d.add(
        stat_panel(
            "Judge spend (range)",
            "Judge spend over the dashboard's time range (the daily cap resets at UTC midnight).",
            f"sum(increase(rag_sidecar_judge_cost_usd_total{{{QI}}}[$__range]))",
            unit="currencyUSD",
        ),
        8,
    )
    d.add(
        state_panel(
            "Judge circuit breaker",
            "0 closed, 1 half-open (probing), 2 open (no requests).",
            f"max by (instance, judge) (rag_sidecar_judge_breaker_state{{{QI}}})",
            "{{instance}} {{judge}}",
            {"0": ("closed", "green"), "1": ("half-open", "yellow"), "2": ("open", "red")},
        ),
        12,
    )
    d.add(
        ts(
            "Judge skipped by reason",
            "Sampled traces that got no judge event, per second by reason (budget, "
            "backpressure, breaker_open, failed, bad_output, shutdown, write_failed).",
            [
                target(
                    f"sum by (judge, reason) (rate(rag_sidecar_judge_skipped_total{{{QI}}}[{R}]))",
                    "{{judge}} {{reason}}",
                )
            ],
            unit="ops",
            stack=True,
        ),
        12,
    )
    d.add(
        ts(
            "Judge queue and throughput",
            "Traces waiting for a judge worker; judge events, cache hits and downgraded "
            "verdicts per second.",
            [
                target(
                    f"sum by (judge) (rag_sidecar_judge_queue_depth{{{QI}}})",
                    "{{judge}} queue",
                    "A",
                ),
                target(
                    f"sum by (judge) (rate(rag_sidecar_judge_judged_total{{{QI}}}[{R}]))",
                    "{{judge}} judged/s",
                    "B",
                ),
                target(
                    f"sum by (judge) (rate(rag_sidecar_judge_cache_hits_total{{{QI}}}[{R}]))",
                    "{{judge}} cache hits/s",
                    "C",
                ),
                target(
                    f"sum by (judge) "
                    f"(rate(rag_sidecar_judge_verdicts_downgraded_total{{{QI}}}[{R}]))",
                    "{{judge}} downgraded/s",
                    "D",
                ),
            ],
            unit="short",
        ),
        12,
    )
    d.add(
        ts(
            "Judge canaries",
            "Canaries (known verdicts) by outcome per hour, and the share of recent "
            "canaries that passed.",
            [
                target(
                    f"sum by (judge, outcome) "
                    f"(increase(rag_sidecar_judge_canary_total{{{QI}}}[1h]))",
                    "{{judge}} {{outcome}}",
                    "A",
                ),
                target(
                    f"max by (judge) (rag_sidecar_judge_canary_accuracy{{{QI}}})",
                    "{{judge}} accuracy",
                    "B",
                ),
            ],
            unit="short",
        ),
        12,
    )
    return d.build()


DASHBOARDS = {
    "rag-sidecar-overview.json": overview,
    "rag-sidecar-operations.json": operations,
}


def render(data: dict[str, Any]) -> str:
    """The committed text of a dashboard: sorted keys, two-space indent, final newline."""
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def build_all() -> dict[str, str]:
    """File name → JSON text of every dashboard."""
    return {name: render(make()) for name, make in DASHBOARDS.items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="fail if the JSON files are stale")
    parser.add_argument("--out", type=Path, default=HERE, help="output directory")
    args = parser.parse_args(argv)
    stale = []
    for name, text in build_all().items():
        path = args.out / name
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print(f"stale: {', '.join(stale)} (run python dashboards/generate.py)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
