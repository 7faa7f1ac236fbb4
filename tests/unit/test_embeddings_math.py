"""Embedding maths and sentence splitting of the embeddings tier (no model needed)."""

from __future__ import annotations

import numpy as np
import pytest

from sidecar.scorers.embeddings.scorer import answer_sentences, split_sentences
from sidecar.scorers.embeddings.vectors import (
    cosine,
    groundedness,
    l2_normalise,
    mean_pool,
    support,
)


def test_mean_pool_ignores_padding_and_l2_normalises() -> None:
    hidden = np.array(
        [
            [[1.0, 2.0], [3.0, 4.0], [1000.0, -1000.0]],  # third token is padding
            [[2.0, 0.0], [-50.0, 50.0], [70.0, 70.0]],  # only the first token is real
        ],
        dtype=np.float32,
    )
    mask = np.array([[1, 1, 0], [1, 0, 0]], dtype=np.int64)
    pooled = mean_pool(hidden, mask)
    np.testing.assert_allclose(pooled, [[2.0, 3.0], [2.0, 0.0]], rtol=1e-6)
    unit = l2_normalise(pooled)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), [1.0, 1.0], rtol=1e-6)
    np.testing.assert_allclose(unit[0], np.array([2.0, 3.0]) / np.sqrt(13.0), rtol=1e-6)
    np.testing.assert_allclose(unit[1], [1.0, 0.0])


def test_mean_pool_of_an_all_padding_row_is_zero_and_stays_zero() -> None:
    pooled = mean_pool(np.ones((1, 2, 3), dtype=np.float32), np.zeros((1, 2), dtype=np.int64))
    assert not pooled.any()
    assert not l2_normalise(pooled).any()


def test_support_is_the_best_chunk_sentence_per_answer_sentence() -> None:
    answer = l2_normalise(np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0], [0.0, 0.0, -1.0]]))
    chunks = l2_normalise(np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
    best = support(answer, chunks)
    np.testing.assert_allclose(best, [1.0, np.sqrt(0.5), 0.0], rtol=1e-6)  # negative → 0
    mean, low = groundedness(answer, chunks)
    assert mean == pytest.approx((1.0 + np.sqrt(0.5)) / 3, rel=1e-6)
    assert low == 0.0


def test_cosine_is_clipped_to_a_ratio() -> None:
    a = l2_normalise(np.array([1.0, 0.0]))
    assert cosine(a, l2_normalise(np.array([-1.0, 0.1]))) == 0.0
    assert cosine(a, a) == pytest.approx(1.0)
    assert cosine(a, l2_normalise(np.array([1.0, 1.0]))) == pytest.approx(np.sqrt(0.5))


def test_split_sentences_drops_citations_and_blank_parts() -> None:
    text = (
        'Open Settings [1]. Then click "Reset"! Is it done?\n\n- A bullet line\nVersion 3.5 works.'
    )
    assert split_sentences(text) == [
        "Open Settings.",
        'Then click "Reset"!',
        "Is it done?",
        "- A bullet line",
        "Version 3.5 works.",
    ]


def test_answer_sentences_skip_fragments_but_never_lose_a_short_answer() -> None:
    assert answer_sentences("Yes. The link expires after 24 hours [2].") == [
        "The link expires after 24 hours."
    ]
    assert answer_sentences("Paris [1].") == ["Paris."]
    assert answer_sentences("   ") == []
