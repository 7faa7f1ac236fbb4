"""Retriever scores and the empty/duplicate context family."""

from __future__ import annotations

import math

import pytest

from sidecar.scorers.base import Scores
from sidecar.scorers.heuristics import HeuristicsSettings
from sidecar.scorers.heuristics.context import ContextScorer
from sidecar.scorers.heuristics.retrieval import RetrievalScorer
from sidecar.trace import Chunk, Trace


def _trace(*chunks: tuple[str, float | None]) -> Trace:
    return Trace(
        trace_id="t",
        query="q",
        answer="a",
        chunks=[Chunk(text=text, score=score) for text, score in chunks],
    )


def _retrieval(trace: Trace, **settings: object) -> Scores:
    out = Scores()
    RetrievalScorer(HeuristicsSettings.model_validate(settings)).score(trace, out)
    return out


def test_top_mean_gap_and_count() -> None:
    out = _retrieval(_trace(("a", 0.5), ("b", 0.9), ("c", None), ("d", 0.7)))
    assert out.values["retrieval_count"] == 4
    assert out.values["retrieval_top_score"] == 0.9
    assert out.values["retrieval_mean_score"] == pytest.approx(0.7)
    assert out.values["retrieval_score_gap"] == pytest.approx(0.2)
    assert out.flags == []


def test_scores_are_in_retriever_units_not_clipped() -> None:
    out = _retrieval(_trace(("a", 12.5), ("b", -3.0)))
    assert out.values["retrieval_top_score"] == 12.5
    assert out.values["retrieval_score_gap"] == 15.5


def test_gap_needs_two_scored_chunks() -> None:
    out = _retrieval(_trace(("a", 0.8), ("b", None)))
    assert "retrieval_score_gap" not in out.values
    assert out.values["retrieval_top_score"] == 0.8


def test_missing_scores_emit_nothing_but_the_flag() -> None:
    out = _retrieval(_trace(("a", None), ("b", None)))
    assert out.flags == ["missing_retrieval_scores"]
    assert set(out.values) == {"retrieval_count"}


def test_no_chunks_is_not_missing_scores() -> None:
    out = _retrieval(_trace())
    assert out.flags == [] and out.values == {"retrieval_count": 0.0}


def test_low_retrieval_score_threshold() -> None:
    assert _retrieval(_trace(("a", 0.2))).flags == ["low_retrieval_score"]
    assert _retrieval(_trace(("a", 0.3))).flags == []
    assert _retrieval(_trace(("a", 0.5)), low_retrieval_score=0.6).flags == ["low_retrieval_score"]
    assert _retrieval(_trace(("a", 0.01)), low_retrieval_score=None).flags == []


def test_non_finite_scores_are_ignored() -> None:
    out = _retrieval(_trace(("a", math.nan), ("b", 0.6), ("c", math.inf)))
    assert out.values["retrieval_top_score"] == 0.6
    assert out.values["retrieval_mean_score"] == 0.6
    assert all(math.isfinite(v) for v in out.values.values())


def _context(trace: Trace) -> Scores:
    out = Scores()
    ContextScorer().score(trace, out)
    return out


def test_empty_retrieval_when_no_chunks_or_all_blank() -> None:
    assert _context(_trace()).flags == ["empty_retrieval"]
    out = _context(_trace((" ", None), ("\n\t", None)))
    assert out.flags == ["empty_retrieval"]
    assert out.values["context_redundancy"] == 0.0
    assert _context(_trace((" ", None), ("text", None))).flags == []


def test_duplicates_after_whitespace_and_case_normalisation() -> None:
    out = _context(
        _trace(
            ("Reset your  password in Settings.", 0.9),
            ("Billing is monthly.", 0.8),
            ("reset your password\nin settings.", 0.7),
            ("RESET YOUR PASSWORD IN SETTINGS.", 0.6),
        )
    )
    assert out.flags == ["duplicate_chunks"]
    assert out.values["context_redundancy"] == 0.5


def test_distinct_chunks_have_no_redundancy() -> None:
    out = _context(_trace(("one", None), ("two", None), ("one two", None)))
    assert out.flags == [] and out.values["context_redundancy"] == 0.0


def test_huge_finite_scores_neither_raise_nor_give_infinite_values() -> None:
    """±1.7e308 are finite, but their sum overflows (``fsum`` raised OverflowError and the
    pipeline stopped) and their gap is infinite (written as ``null`` in the event)."""
    out = _retrieval(_trace(("a", 1.7e308), ("b", 1.7e308), ("c", -1.7e308)))
    assert out.values["retrieval_top_score"] == 1.7e308
    assert all(math.isfinite(v) for v in out.values.values())
    assert out.values["retrieval_mean_score"] == pytest.approx(1.7e308 / 3)
    gap = _retrieval(_trace(("a", 1e308), ("b", -1e308))).values
    assert "retrieval_score_gap" not in gap and gap["retrieval_mean_score"] == 0.0
