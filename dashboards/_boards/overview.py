"""The Overview board: answer quality per app / model / prompt_version.

Its first rows (summary, judge and heuristic scores) are here; the rest are in
``overview_signals``.
"""

from __future__ import annotations

from typing import Any

from .board import Board, datasource_var, quality_vars
from .overview_signals import drift, feedback, flags, sampling
from .panels import stat_panel, target, ts
from .promql import (
    AMP,
    CONTEXT_SCORES,
    HEURISTIC_RATIOS,
    JUDGED,
    LEG_AMP,
    QA,
    REFERENCE_SCORES,
    RETRIEVAL_SCORES,
    SCORED,
    Q,
    R,
    mean,
    quantile,
    range_mean,
    rx,
)


def overview() -> dict[str, Any]:
    """Answer quality: scores per app/model/prompt_version, sampling, flags, feedback, drift."""
    d = Board(
        "rag-sidecar-overview",
        "rag-sidecar / Overview",
        "Answer quality measured by rag-sidecar: heuristic scores on every trace, LLM-judge "
        "scores on a sample, user feedback, drift and the version A/B readout.",
        ["rag-sidecar", "rag", "quality"],
    ).variables(datasource_var(), *quality_vars())

    _summary(d)
    _judge_scores(d)
    _heuristic_scores(d)
    sampling(d)
    flags(d)
    feedback(d)
    drift(d)
    return d.build()


def _summary(d: Board) -> None:
    """Row "Summary": rates and range-wide means as single numbers."""
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


def _judge_scores(d: Board) -> None:
    """Row "LLM judge scores": means, quantiles, context and reference scores."""
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


def _heuristic_scores(d: Board) -> None:
    """Row "Heuristic scores (every trace)"."""
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
