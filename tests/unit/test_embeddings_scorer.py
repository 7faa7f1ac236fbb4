"""The model-path scorer: what its sentence cache holds, and when the model is used."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import orjson

from sidecar.scorers.embeddings import EmbeddingsSettings
from sidecar.scorers.embeddings.scorer import EmbeddingScorer
from sidecar.scorers.embeddings.vectors import Matrix
from sidecar.trace import Trace, decode_trace
from tests.conftest import make_trace
from tests.unit.test_embeddings_stage import BagOfWords


def trace(**fields: object) -> Trace:
    return decode_trace(orjson.dumps(make_trace(**fields)))


def test_cached_vectors_do_not_pin_the_batch_they_were_encoded_in() -> None:
    """A cached row used to be a view of the whole (texts, dim) matrix of its trace: a few
    hot sentences kept every batch they came from alive, far beyond cache_size vectors."""
    scorer = EmbeddingScorer(EmbeddingsSettings(enabled=True, cache_size=4), BagOfWords())
    text = " ".join(f"Chunk sentence number {i} is here." for i in range(200))
    scorer(trace(chunks=[{"text": text}]))
    cached = list(scorer._cache.values())
    assert len(cached) == 4
    assert all(v.base is None and v.nbytes == 64 * 4 for v in cached)  # own 64 floats each


def test_cache_keys_do_not_hold_the_sentences() -> None:
    """Keys were the sentences themselves: an unpunctuated 200 KB chunk (a table, a log,
    CJK text) stayed in memory once per cache entry, whatever its vector's size."""
    scorer = EmbeddingScorer(EmbeddingsSettings(enabled=True), BagOfWords())
    scorer(trace(chunks=[{"text": "cell " * 40_000}]))
    assert len(scorer._cache) == 3  # query, answer (its one sentence), the chunk
    assert all(len(k) <= 32 for k in scorer._cache)


def test_cache_still_serves_repeated_sentences() -> None:
    enc = BagOfWords()
    scorer = EmbeddingScorer(EmbeddingsSettings(enabled=True), enc)
    first = scorer(trace())
    again = scorer(trace())
    assert again.encoded == 0 and again.cache_hits == first.encoded > 0
    assert again.scores == first.scores and len(enc.calls) == 1


class Fixed:
    """An encoder that returns one vector for every text and counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def encode(self, texts: Sequence[str]) -> Matrix:
        self.calls += 1
        return np.ones((len(texts), 4), dtype=np.float32) / 2.0


def test_null_embeddings_in_metadata_fall_back_on_the_model() -> None:
    """``"embeddings": null`` (a service's optional field left empty) made every score skip
    as invalid, and the loaded model was never used for such traces."""
    enc = Fixed()
    scorer = EmbeddingScorer(EmbeddingsSettings(enabled=True), enc)
    out = scorer(trace(metadata={"embeddings": None}))
    assert out.origin == "model" and enc.calls == 1
    assert out.scores["answer_relevance_semantic"] == 1.0 and not out.skipped
