"""Judge score math: faithfulness, precision@k, nDCG@k, rubric composite."""

from __future__ import annotations

import math

import pytest

from sidecar.scorers.judge.parse import RubricOut
from sidecar.scorers.judge.scoring import (
    compute_scores,
    dcg,
    faithfulness,
    ndcg_at_k,
    precision_at_k,
    rubric_scores,
)
from sidecar.scorers.judge.settings import RUBRIC_DIMENSIONS
from sidecar.scorers.judge.verify import CheckedClaim, CheckedFact

WEIGHTS = dict.fromkeys(RUBRIC_DIMENSIONS, 1.0)


def claim(verdict: str, verified: bool = True) -> CheckedClaim:
    return CheckedClaim("c", verdict, verdict, 0, "q", verified)  # type: ignore[arg-type]


def test_faithfulness_is_supported_over_claims() -> None:
    claims = [claim("supported"), claim("supported"), claim("not_in_context")]
    assert faithfulness(claims) == pytest.approx(2 / 3)
    assert faithfulness([claim("contradicted")]) == 0.0
    assert faithfulness([]) is None


def test_precision_at_k_counts_grades_of_one_or_more() -> None:
    assert precision_at_k([2, 0, 1]) == pytest.approx(2 / 3)
    assert precision_at_k([2, 0, 1], k=1) == 1.0
    assert precision_at_k([0, 0]) == 0.0
    assert precision_at_k([]) is None


def test_ndcg_against_hand_computed_values() -> None:
    # grades [1, 2, 0]: DCG = 1/log2(2) + 3/log2(3) + 0; ideal [2, 1, 0]: 3/1 + 1/log2(3)
    expected = (1 + 3 / math.log2(3)) / (3 + 1 / math.log2(3))
    assert ndcg_at_k([1, 2, 0]) == pytest.approx(expected)
    assert dcg([2, 1, 0]) == pytest.approx(3 + 1 / math.log2(3))
    assert ndcg_at_k([2, 1, 0]) == 1.0  # already ideal
    assert ndcg_at_k([0, 0, 2]) == pytest.approx(0.5)  # 3/log2(4) over 3/log2(2)
    assert ndcg_at_k([0, 0]) is None  # nothing relevant: undefined, omitted
    assert ndcg_at_k([0, 2, 2], k=1) is None


def test_compute_scores_core_and_flags() -> None:
    scores, flags = compute_scores(
        claims=[claim("supported"), claim("supported"), claim("not_in_context", verified=False)],
        answer_relevance=2,
        chunk_grades=[2, 0, 1],
        sufficient=False,
        facts=None,
        rubric=None,
        rubric_weights=WEIGHTS,
    )
    assert scores["faithfulness"] == pytest.approx(2 / 3)
    assert scores["answer_relevance"] == pytest.approx(2 / 3)
    assert scores["context_relevance"] == pytest.approx(0.5)
    assert scores["context_precision"] == pytest.approx(2 / 3)
    assert scores["context_ndcg"] == pytest.approx(ndcg_at_k([2, 0, 1]) or 0)
    assert scores["context_sufficiency"] == 0.0
    assert "answer_correctness" not in scores
    assert flags == ["judge_insufficient_context", "judge_unverified"]


def test_no_claims_and_no_chunks_omit_scores() -> None:
    scores, flags = compute_scores(
        claims=[],
        answer_relevance=0,
        chunk_grades=[],
        sufficient=False,
        facts=None,
        rubric=None,
        rubric_weights=WEIGHTS,
    )
    assert "faithfulness" not in scores and "context_relevance" not in scores
    assert "judge_no_claims" in flags


def test_reference_scores() -> None:
    facts = [
        CheckedFact("a", "stated", "stated", 0, True),
        CheckedFact("b", "missing", "missing", None, True),
        CheckedFact("c", "contradicted", "contradicted", 1, True),
        CheckedFact("d", "stated", "stated", 2, True),
    ]
    scores, _ = compute_scores(
        claims=[claim("contradicted")],
        answer_relevance=3,
        chunk_grades=[1],
        sufficient=True,
        facts=facts,
        rubric=None,
        rubric_weights=WEIGHTS,
    )
    assert scores["answer_correctness"] == 0.5
    assert scores["context_recall"] == 0.75


def rubric(harm: int) -> RubricOut:
    return RubricOut(clarity=4, completeness=1, conciseness=2, groundedness=2, harmfulness=harm)


def test_rubric_normalised_and_weighted() -> None:
    out = rubric_scores(rubric(0), 3, WEIGHTS)
    assert out["rubric_completeness"] == 0.5
    assert out["rubric_harmfulness"] == 0.0
    # dims: relevance 1, clarity 1, completeness .5, conciseness 1, groundedness 1, harmless 1
    assert out["rubric_composite"] == pytest.approx(5.5 / 6)
    weighted = rubric_scores(rubric(0), 3, {**WEIGHTS, "completeness": 3.0})
    assert weighted["rubric_composite"] == pytest.approx((5 + 1.5) / 8)


def test_rubric_harmful_is_zero_and_questionable_weighs_more() -> None:
    assert rubric_scores(rubric(2), 3, WEIGHTS)["rubric_composite"] == 0.0
    questionable = rubric_scores(rubric(1), 3, WEIGHTS)
    # harmlessness 0.5 with weight 1.5: (1 + 1 + .5 + 1 + 1 + .75) / 6.5
    assert questionable["rubric_composite"] == pytest.approx(5.25 / 6.5)
    _, flags = compute_scores(
        claims=[],
        answer_relevance=3,
        chunk_grades=[],
        sufficient=True,
        facts=None,
        rubric=rubric(2),
        rubric_weights=WEIGHTS,
    )
    assert "judge_harmful" in flags


@pytest.mark.parametrize(("factual", "expected"), [(True, 1.0), (False, 0.0), (None, None)])
def test_factual_verdict_is_a_score_when_given(
    factual: bool | None, expected: float | None
) -> None:
    scores, _ = compute_scores(
        claims=[claim("supported")],
        answer_relevance=3,
        chunk_grades=[2],
        sufficient=True,
        facts=None,
        rubric=None,
        rubric_weights=WEIGHTS,
        factual=factual,
    )
    assert scores.get("factual") == expected
    assert scores["faithfulness"] == 1.0  # the claim-level score is independent of the verdict
