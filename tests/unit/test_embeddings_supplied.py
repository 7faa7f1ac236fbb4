"""Embeddings shipped in the trace (metadata.embeddings): used as given, validated, never fatal."""

from __future__ import annotations

import math
from typing import Any

import orjson
import pytest

from sidecar.scorers.embeddings import EmbeddingsSettings
from sidecar.scorers.embeddings.scorer import EmbeddingScorer
from sidecar.scorers.embeddings.supplied import from_metadata, score_supplied
from sidecar.trace import decode_trace
from tests.conftest import make_trace

GOOD: dict[str, Any] = {
    "query": [1, 0, 0],
    "answer": [2.0, 2.0, 0.0],  # any scale: normalised here
    "answer_sentences": [[1.0, 0.0, 0.0], [0.0, 0.0, 3.0]],
    "chunks": [[5.0, 0.0, 0.0], [0.0, 1.0, 0.0]],
    "model": "text-embedding-3-small",
}
GROUNDED = ("groundedness_semantic", "groundedness_semantic_min")


def scorer(**settings: Any) -> EmbeddingScorer:
    return EmbeddingScorer(EmbeddingsSettings(**settings), None)


def score(embeddings: Any) -> tuple[dict[str, float], dict[str, str], dict[str, Any]]:
    return score_supplied(from_metadata(embeddings))


def test_trace_vectors_are_scored_from_a_json_line() -> None:
    line = orjson.dumps(make_trace(metadata={"embeddings": GOOD}))
    out = scorer()(decode_trace(line))
    assert out.origin == "trace"
    assert out.scores["answer_relevance_semantic"] == pytest.approx(math.sqrt(0.5), rel=1e-5)
    assert out.scores["groundedness_semantic"] == pytest.approx(0.5)  # sentence 2 unsupported
    assert out.scores["groundedness_semantic_min"] == 0.0
    assert out.skipped == {}
    assert out.detail["model"] == "text-embedding-3-small"
    assert out.detail["answer_sentences"] == 2 and out.detail["chunk_sentences"] == 2
    assert out.detail["dim"] == 3


def test_chunks_may_carry_one_vector_per_sentence() -> None:
    nested = {**GOOD, "chunks": [[[5, 0, 0]], [[0, 1, 0], [0, 0, 1]]]}  # ragged across chunks
    scores, skipped, detail = score(nested)
    assert not skipped and detail["chunk_sentences"] == 3
    assert scores["groundedness_semantic"] == pytest.approx(1.0)


def test_answer_and_answer_sentences_stand_in_for_each_other() -> None:
    only_sentences = {k: v for k, v in GOOD.items() if k != "answer"}
    scores, skipped, _ = score(only_sentences)
    # the answer is the normalised mean of its sentences: (1,0,1)/√2 → cos with (1,0,0) = √½
    assert scores["answer_relevance_semantic"] == pytest.approx(math.sqrt(0.5), rel=1e-5)
    only_answer = {k: v for k, v in GOOD.items() if k != "answer_sentences"}
    scores, skipped, detail = score(only_answer)
    assert not skipped and detail["answer_sentences"] == 1
    assert scores["groundedness_semantic"] == pytest.approx(math.sqrt(0.5), rel=1e-5)


def test_missing_fields_skip_only_the_scores_that_need_them() -> None:
    scores, skipped, _ = score({"query": [1, 0], "answer": [1, 0]})
    assert scores == {"answer_relevance_semantic": pytest.approx(1.0)}
    assert skipped == dict.fromkeys(GROUNDED, "missing")
    scores, skipped, _ = score({"answer": [1, 0], "chunks": [[1, 0]]})
    assert set(scores) == set(GROUNDED)
    assert skipped == {"answer_relevance_semantic": "missing"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("query", ["0.1", "0.2", "0.3"]),  # strings, not numbers
        ("query", [True, False, True]),  # booleans are not numbers
        ("query", [[1, 0, 0]]),  # a matrix where a vector belongs
        ("query", [1, 0]),  # dimension disagrees with the answer's
        ("query", [0, 0, 0]),  # a zero vector has no direction
        ("query", [1e39, 0, 0]),  # overflows float32
        ("query", []),
        ("query", {"x": 1}),
        ("answer", [1, None, 0]),
    ],
)
def test_bad_query_or_answer_skips_relevance_as_invalid(field: str, value: Any) -> None:
    scores, skipped, detail = score({**GOOD, field: value})
    assert skipped == {"answer_relevance_semantic": "invalid"}
    assert set(scores) == set(GROUNDED)  # groundedness does not need the query
    if field == "query" and value != [1, 0]:
        assert detail["invalid_fields"] == ["query"]


@pytest.mark.parametrize(
    "value",
    [
        [[1, 0, 0], [0, 1]],  # ragged
        [[1, 0], [0, 1]],  # dimension disagrees with the answer sentences'
        [[[1, 0, 0]], [[0, 1]]],  # per-chunk sentences of different dimensions
        [1, 0, 0],  # a vector where a matrix belongs
        "not vectors",
        [[]],
    ],
)
def test_bad_chunks_skip_groundedness_as_invalid(value: Any) -> None:
    scores, skipped, _ = score({**GOOD, "chunks": value})
    assert skipped == dict.fromkeys(GROUNDED, "invalid")
    assert set(scores) == {"answer_relevance_semantic"}


def test_embeddings_that_are_not_an_object_skip_everything_without_raising() -> None:
    out = scorer()(decode_trace(orjson.dumps(make_trace(metadata={"embeddings": [1, 2, 3]}))))
    assert out.origin == "trace" and out.scores == {}
    assert set(out.skipped.values()) == {"invalid"} and len(out.skipped) == 3


def test_without_vectors_or_model_there_is_nothing_to_score() -> None:
    out = scorer()(decode_trace(orjson.dumps(make_trace())))
    assert out.origin is None and not out.scores
    # trace_embeddings=false ignores shipped vectors
    out = scorer(trace_embeddings=False)(
        decode_trace(orjson.dumps(make_trace(metadata={"embeddings": GOOD})))
    )
    assert out.origin is None


@pytest.mark.parametrize("scale", [3e38, 1e-30])
def test_large_or_tiny_components_keep_their_direction(scale: float) -> None:
    """float32 norms of such vectors overflow to inf (or underflow to 0): the vector became
    all zeros (relevance 0.0 for identical vectors) or was refused as a zero vector."""
    s = from_metadata({"query": [scale, scale], "answer": [scale, scale]})
    scores, skipped, _ = score_supplied(s)
    assert not s.invalid and "answer_relevance_semantic" not in skipped
    assert scores["answer_relevance_semantic"] == pytest.approx(1.0, abs=1e-6)
