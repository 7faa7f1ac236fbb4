"""Embeddings shipped by the RAG service in the trace: ``metadata.embeddings``.

The shape (every key optional; vectors are lists of numbers, all of one
dimension, any scale: they are normalised here)::

    {"query": [..],                      # the query
     "answer": [..],                     # the whole answer
     "answer_sentences": [[..], ..],     # one per answer sentence
     "chunks": [[..], ..]                # one per chunk ...
               | [[[..], ..], ..],       # ... or a list of sentence vectors per chunk
     "model": "name"}                    # recorded in the event's detail

Liberal where it is safe: without ``answer``, the answer is the normalised mean
of ``answer_sentences``; without ``answer_sentences``, the whole ``answer`` is
the only sentence. A field that is present but unusable (not numbers, ragged,
non-finite, a zero vector, dimensions that disagree with the vectors it is
compared with) makes the scores needing it skip with reason ``invalid``; an
absent one, ``missing``. Nothing here raises on data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from .vectors import Matrix, cosine, groundedness, l2_normalise

MAX_DIM: Final = 8192
FIELDS: Final = ("query", "answer", "answer_sentences", "chunks")


@dataclass(slots=True)
class Supplied:
    """The usable vectors of ``metadata.embeddings`` (unit rows) and what was wrong."""

    vectors: dict[str, Matrix] = field(default_factory=dict)
    invalid: set[str] = field(default_factory=set)
    model: str | None = None


def _array(value: Any, ndim: int) -> Matrix | None:
    """``value`` as unit float32 rows of ``ndim`` dimensions, or None when unusable."""
    try:
        arr = np.array(value)
    except (ValueError, TypeError, OverflowError):
        return None  # ragged, or not array-like
    if arr.dtype.kind not in "fiu" or arr.ndim != ndim or arr.size == 0:
        return None
    if not 1 <= arr.shape[-1] <= MAX_DIM:
        return None
    with np.errstate(all="ignore"):
        arr32 = arr.astype(np.float32)
        if not np.isfinite(arr32).all():
            return None
        # Scaled to a peak of 1 first: the norm of large (or tiny) components overflows
        # (underflows) in float32, and a direction must not become the zero vector.
        peak = np.abs(arr32).max(axis=-1, keepdims=True)
    if not np.all(peak > 0.0):
        return None
    return l2_normalise(arr32 / peak)


def _chunks(value: Any) -> Matrix | None:
    """One vector per chunk, or per chunk a list of sentence vectors (flattened)."""
    if (
        isinstance(value, list)
        and value
        and all(isinstance(c, list) and c and isinstance(c[0], list) for c in value)
    ):
        parts = [_array(c, 2) for c in value]
        if any(p is None for p in parts) or len({p.shape[1] for p in parts if p is not None}) != 1:
            return None
        return np.concatenate([p for p in parts if p is not None]).astype(np.float32)
    return _array(value, 2)


def from_metadata(value: Any) -> Supplied:
    """Validate ``metadata.embeddings``; a non-object makes every field invalid."""
    out = Supplied()
    if not isinstance(value, dict):
        out.invalid.update(FIELDS)
        return out
    model = value.get("model")
    out.model = model[:200] if isinstance(model, str) else None
    for name in FIELDS:
        raw = value.get(name)
        if raw is None:
            continue
        if name == "chunks":
            arr = _chunks(raw)
        else:
            arr = _array(raw, 1 if name in ("query", "answer") else 2)
        if arr is None:
            out.invalid.add(name)
        else:
            out.vectors[name] = arr
    return out


def _need(s: Supplied, *names: str) -> str | None:
    """The skip reason when any of ``names`` is unusable, else None."""
    if any(n in s.invalid for n in names):
        return "invalid"
    if any(n not in s.vectors for n in names):
        return "missing"
    return None


def score_supplied(s: Supplied) -> tuple[dict[str, float], dict[str, str], dict[str, Any]]:
    """(scores, skipped metric → reason, detail) from trace-supplied vectors."""
    v = s.vectors
    scores: dict[str, float] = {}
    skipped: dict[str, str] = {}
    detail: dict[str, Any] = {}

    # the answer as one vector, and as sentences: fall back on each other
    if "answer" not in v and "answer" not in s.invalid and "answer_sentences" in v:
        v["answer"] = l2_normalise(v["answer_sentences"].mean(axis=0))
    if "answer_sentences" not in v and "answer_sentences" not in s.invalid and "answer" in v:
        v["answer_sentences"] = v["answer"][None, :]

    reason = _need(s, "query", "answer")
    if reason is None and v["query"].shape[0] != v["answer"].shape[0]:
        reason = "invalid"
    if reason is None:
        scores["answer_relevance_semantic"] = cosine(v["query"], v["answer"])
    else:
        skipped["answer_relevance_semantic"] = reason

    reason = _need(s, "answer_sentences", "chunks")
    if reason is None and v["answer_sentences"].shape[1] != v["chunks"].shape[1]:
        reason = "invalid"
    if reason is None:
        mean, low = groundedness(v["answer_sentences"], v["chunks"])
        scores["groundedness_semantic"] = mean
        scores["groundedness_semantic_min"] = low
        detail["answer_sentences"] = int(v["answer_sentences"].shape[0])
        detail["chunk_sentences"] = int(v["chunks"].shape[0])
    else:
        skipped["groundedness_semantic"] = reason
        skipped["groundedness_semantic_min"] = reason
    if s.invalid:
        detail["invalid_fields"] = sorted(s.invalid)
    if s.model is not None:
        detail["model"] = s.model
    dims = {int(a.shape[-1]) for a in v.values()}
    if len(dims) == 1:
        detail["dim"] = dims.pop()
    return scores, skipped, detail
