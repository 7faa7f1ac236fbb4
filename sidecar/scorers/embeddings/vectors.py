"""Vector maths of the embeddings tier: pooling, normalisation, the two scores.

All vectors are float32 rows. Cosines of unit vectors are dot products; scores
are clipped at 0 (an unrelated pair of sentences is 0, not a negative number,
so every score is a ratio in [0, 1]).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

Matrix = npt.NDArray[np.float32]
"""A float32 array: one vector per row (or one vector, 1-D)."""

_EPS = 1e-12


def mean_pool(hidden: npt.NDArray[Any], mask: npt.NDArray[Any]) -> Matrix:
    """Mean of each sequence's token vectors over its real tokens (``mask`` = 1).

    ``hidden``: (batch, tokens, dim); ``mask``: (batch, tokens). A row without any
    real token pools to the zero vector.
    """
    weights = mask.astype(np.float32)[:, :, None]
    summed = (hidden.astype(np.float32) * weights).sum(axis=1)
    counts = np.maximum(weights.sum(axis=1), 1e-9)
    pooled: Matrix = (summed / counts).astype(np.float32)
    return pooled


def l2_normalise(vectors: npt.NDArray[Any]) -> Matrix:
    """Each row scaled to unit length (zero rows stay zero)."""
    v = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(v, axis=-1, keepdims=True)
    unit: Matrix = (v / np.maximum(norms, _EPS)).astype(np.float32)
    return unit


def cosine(a: Matrix, b: Matrix) -> float:
    """Cosine of two unit vectors, clipped to [0, 1]."""
    return float(min(max(float(np.dot(a, b)), 0.0), 1.0))


def support(answer_sentences: Matrix, chunk_sentences: Matrix) -> Matrix:
    """For each answer sentence (unit rows), its best cosine against any chunk sentence,
    clipped to [0, 1]."""
    sims = answer_sentences @ chunk_sentences.T
    best: Matrix = np.clip(sims.max(axis=1), 0.0, 1.0).astype(np.float32)
    return best


def groundedness(answer_sentences: Matrix, chunk_sentences: Matrix) -> tuple[float, float]:
    """(mean, min) of :func:`support`: how well the context backs the answer, on average
    and at its weakest sentence."""
    best = support(answer_sentences, chunk_sentences)
    return float(best.mean()), float(best.min())
