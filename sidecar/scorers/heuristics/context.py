"""Empty and duplicated context.

Two chunks are duplicates when their texts are equal after collapsing runs of
whitespace and lowercasing. Blank chunks are never counted as duplicates (they
feed ``empty_retrieval`` when every chunk is blank).
"""

from __future__ import annotations

from ..base import Scores
from .prepared import FamilyScorer, PreparedTrace


class ContextScorer(FamilyScorer):
    """``context_redundancy``; flags ``empty_retrieval``, ``duplicate_chunks``."""

    name = "context"

    def score_prepared(self, p: PreparedTrace, out: Scores) -> None:
        chunks = p.chunks
        if not chunks:
            out.flag("empty_retrieval")
            return
        seen: set[int] = set()
        duplicates = 0
        blank = 0
        for chunk in chunks:
            if chunk.blank:
                blank += 1
            elif chunk.fingerprint in seen:
                duplicates += 1
            else:
                seen.add(chunk.fingerprint)
        if blank == len(chunks):
            out.flag("empty_retrieval")
        out.values["context_redundancy"] = duplicates / len(chunks)
        if duplicates:
            out.flag("duplicate_chunks")
