"""Overview rows beyond the scores: sampling and judge coverage, flags, user feedback,
drift and versions."""

from __future__ import annotations

from grafana_foundation_sdk.models import dashboard as dm

from .board import Board
from .panels import state_panel, table_panel, target, ts
from .promql import AMP, JUDGED, LEG_AMP, QA, SCORED, SCORED_APP, Q, R


def sampling(d: Board) -> None:
    """Row "Sampling and judge coverage"."""
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


def flags(d: Board) -> None:
    """Row "Flags"."""
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


def feedback(d: Board) -> None:
    """Row "User feedback": thumbs and ratings."""
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


def drift(d: Board) -> None:
    """Row "Drift and versions": detectors, statistics, window means, A/B readout."""
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
