"""PromQL building blocks: the label selectors on the template variables, score names,
and the mean / quantile expressions over the rag_sidecar_score histograms.

The quality variables ``app``, ``model`` and ``prompt_version`` are multi-value, so every
selector uses ``=~``.
"""

from __future__ import annotations

from collections.abc import Sequence

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
