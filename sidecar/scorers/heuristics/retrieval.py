"""Retriever scores: top, mean, gap, count; missing and low scores.

Values are in the retriever's own units and are not clipped. The
``low_retrieval_score`` flag assumes higher is better (a similarity); set the
threshold to null for retrievers that report distances. Non-finite scores are
ignored as if absent.
"""

from __future__ import annotations

import math

from ..base import Scores
from .prepared import FamilyScorer, PreparedTrace


class RetrievalScorer(FamilyScorer):
    """``retrieval_count``, ``retrieval_top_score``, ``retrieval_mean_score``,
    ``retrieval_score_gap``; flags ``missing_retrieval_scores``, ``low_retrieval_score``."""

    name = "retrieval"

    def score_prepared(self, p: PreparedTrace, out: Scores) -> None:
        chunks = p.trace.chunks
        values = out.values
        values["retrieval_count"] = float(len(chunks))
        if not chunks:
            return
        scores = [c.score for c in chunks if c.score is not None]
        n = len(scores)
        mean = sum(scores) / n if n else 0.0
        if not math.isfinite(mean):  # rare: drop inf/nan (or recover from overflow)
            scores = [s for s in scores if math.isfinite(s)]
            n = len(scores)
            mean = math.fsum(s / n for s in scores)  # fsum(scores) could raise OverflowError
        if not scores:
            out.flag("missing_retrieval_scores")
            return
        top = max(scores)
        values["retrieval_top_score"] = top
        values["retrieval_mean_score"] = mean
        if n >= 2 and (gap := top - sorted(scores)[-2]) < math.inf:  # ±1.7e308: inf
            values["retrieval_score_gap"] = gap
        threshold = self.settings.low_retrieval_score
        if threshold is not None and top < threshold:
            out.flag("low_retrieval_score")
