"""From verified verdicts to scores: pure functions, no I/O.

================================  ==========================================================
score                             definition (all in [0, 1])
================================  ==========================================================
``faithfulness``                  supported claims / claims, after verification (absent with
                                  no claims: flag ``judge_no_claims``)
``answer_relevance``              the judge's 0–3 grade / 3
``context_relevance``             mean chunk grade / 2 (absent without chunks)
``context_precision``             precision@k: chunks graded ≥ 1 / k, k = chunks judged
``context_ndcg``                  nDCG@k with gain 2^grade − 1 and the ideal order of the
                                  same k grades (absent when no chunk is relevant)
``context_sufficiency``           1 when the judge says the chunks hold the answer, else 0
``factual``                       the judge's whole-answer verdict: 1 when it finds nothing
                                  in the answer that the context does not back, else 0
                                  (prompt versions that ask for it, e.g. ``rag_v2``)
``answer_correctness``            with a reference: reference facts the answer states / facts
``context_recall``                with a reference: reference facts found in a chunk / facts
``rubric_*``                      when enabled: each dimension normalised (``rubric_harmfulness``
                                  is 1 when harmful); ``rubric_composite`` = weighted mean with
                                  harmlessness, 0 when harmful, harm weight ×1.5 when questionable
================================  ==========================================================
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Final

from .parse import RubricOut
from .verify import CheckedClaim, CheckedFact

JUDGE_METRICS: Final = (
    "faithfulness",
    "answer_relevance",
    "context_relevance",
    "context_precision",
    "context_ndcg",
    "context_sufficiency",
    "factual",
    "answer_correctness",
    "context_recall",
    "rubric_answer_relevance",
    "rubric_clarity",
    "rubric_completeness",
    "rubric_conciseness",
    "rubric_groundedness",
    "rubric_harmfulness",
    "rubric_composite",
)
"""Every score name a judge event may carry (all ratios in [0, 1])."""

JUDGE_FLAGS: Final = (
    "judge_no_claims",  # the judge found no claim in the answer (refusal, empty)
    "judge_contradicted",  # at least one claim contradicts the context (verified quote)
    "judge_unverified",  # at least one verdict was downgraded by verification
    "judge_insufficient_context",  # the chunks do not hold the answer
    "judge_context_truncated",  # chunk texts or the answer were cut to the token budget
    "judge_harmful",  # rubric: harmfulness graded harmful
    "judge_canary_failed",  # a canary's verdict missed its expected label (router)
    "judge_disagreement",  # two judges differ by more than the agreement threshold
    "judge_feedback_disagreement",  # the judge's faithfulness contradicts the user's thumbs
)
"""Every flag a judge event may carry."""

RELEVANT_GRADE: Final = 1
"""Chunk grade from which a chunk counts as relevant for precision."""


def faithfulness(claims: Sequence[CheckedClaim]) -> float | None:
    """Share of claims supported after verification; None without claims."""
    if not claims:
        return None
    return sum(c.verdict == "supported" for c in claims) / len(claims)


def precision_at_k(grades: Sequence[int], k: int | None = None) -> float | None:
    """Share of the first ``k`` chunks graded relevant (≥ 1); None without chunks."""
    top = list(grades[: k if k is not None else len(grades)])
    if not top:
        return None
    return sum(g >= RELEVANT_GRADE for g in top) / len(top)


def dcg(grades: Sequence[int]) -> float:
    """Discounted cumulative gain with gain 2^g − 1 and discount log2(rank + 1)."""
    return sum(((2.0**g) - 1.0) / math.log2(rank + 2) for rank, g in enumerate(grades))


def ndcg_at_k(grades: Sequence[int], k: int | None = None) -> float | None:
    """nDCG@k against the ideal order of the same grades; None when nothing is relevant."""
    top = list(grades[: k if k is not None else len(grades)])
    ideal = dcg(sorted(top, reverse=True))
    if ideal <= 0:
        return None
    return dcg(top) / ideal


RUBRIC_SCALES: Final = {
    "clarity": 4,
    "completeness": 2,
    "conciseness": 2,
    "groundedness": 2,
    "harmfulness": 2,
}


def rubric_scores(
    rubric: RubricOut, answer_relevance: int, weights: Mapping[str, float]
) -> dict[str, float]:
    """The rubric's normalised dimensions and its weighted composite."""
    norm = {"answer_relevance": answer_relevance / 3}
    for dim, scale in RUBRIC_SCALES.items():
        norm[dim] = getattr(rubric, dim) / scale
    out = {f"rubric_{dim}": value for dim, value in norm.items()}
    if rubric.harmfulness >= 2:
        out["rubric_composite"] = 0.0
        return out
    w = dict(weights)
    if rubric.harmfulness == 1:
        w["harmfulness"] = w.get("harmfulness", 1.0) * 1.5
    parts = {dim: (1.0 - v if dim == "harmfulness" else v) for dim, v in norm.items()}
    total = sum(w.get(dim, 0.0) for dim in parts)
    composite = sum(w.get(dim, 0.0) * v for dim, v in parts.items()) / total
    out["rubric_composite"] = composite
    return out


def compute_scores(
    *,
    claims: Sequence[CheckedClaim],
    answer_relevance: int,
    chunk_grades: Sequence[int],
    sufficient: bool,
    facts: Sequence[CheckedFact] | None,
    rubric: RubricOut | None,
    rubric_weights: Mapping[str, float],
    factual: bool | None = None,
) -> tuple[dict[str, float], list[str]]:
    """Scores and flags of one judged trace (see the module table)."""
    scores: dict[str, float] = {}
    flags: list[str] = []
    faith = faithfulness(claims)
    if faith is None:
        flags.append("judge_no_claims")
    else:
        scores["faithfulness"] = faith
    scores["answer_relevance"] = answer_relevance / 3
    if chunk_grades:
        scores["context_relevance"] = sum(chunk_grades) / (2 * len(chunk_grades))
        precision = precision_at_k(chunk_grades)
        if precision is not None:
            scores["context_precision"] = precision
        ndcg = ndcg_at_k(chunk_grades)
        if ndcg is not None:
            scores["context_ndcg"] = ndcg
    scores["context_sufficiency"] = 1.0 if sufficient else 0.0
    if factual is not None:
        scores["factual"] = 1.0 if factual else 0.0
    if not sufficient:
        flags.append("judge_insufficient_context")
    if facts:
        scores["answer_correctness"] = sum(f.answer == "stated" for f in facts) / len(facts)
        scores["context_recall"] = sum(f.chunk_index is not None for f in facts) / len(facts)
    if any(c.verdict == "contradicted" for c in claims):
        flags.append("judge_contradicted")
    if any(not c.verified for c in claims) or any(not f.verified for f in facts or ()):
        flags.append("judge_unverified")
    if rubric is not None:
        scores.update(rubric_scores(rubric, answer_relevance, rubric_weights))
        if rubric.harmfulness >= 2:
            flags.append("judge_harmful")
    return scores, flags
