"""Bracketed citations of chunks: ``[1]``, ``[1, 2]``, ``[1; 3]``, ``[1-3]``, ``[2–4]``,
Markdown footnotes ``[^1]`` and Azure OpenAI's ``[doc1]``.

A citation is ``[`` + 1–3 digit numbers separated by ``,``/``;`` or joined by a
range dash + ``]``, not preceded by a letter or digit (``arr[1]`` is code; a footnote
``word[^1]`` may be) and
not followed by ``(`` (``[1](url)`` is a Markdown link), and not inside a
Markdown code span or fenced code block (``x = [0, 1]`` is code). Four-digit
numbers (``[2023]``) are not citations. Ranges expand (at most :data:`MAX_RANGE`
indices; wider ranges count their two ends only).

Indices are 1-based (``[1]`` is the first chunk), the common convention, unless
any cited index is 0: then all of the answer's citations are read as 0-based.
``citation_validity`` is the share of distinct cited indices that name an
existing chunk; it is omitted when the answer cites nothing.
"""

from __future__ import annotations

import re
from typing import Final

from ..base import Scores
from .prepared import FamilyScorer, PreparedTrace

MAX_RANGE: Final = 50
"""Widest range (``[a-b]``) that is expanded index by index."""

_CITATION_RE: Final = re.compile(
    r"\[(?:\^|doc)?(\d{1,3}(?:\s*[-–]\s*\d{1,3})?(?:\s*[,;]\s*\d{1,3}(?:\s*[-–]\s*\d{1,3})?)*)\]"
)
_PART_RE: Final = re.compile(r"(\d+)(?:\s*[-–]\s*(\d+))?")
# A fenced code block (closed), or an inline code span on one line.
_CODE_RE: Final = re.compile(r"```.*?```|`[^`\n]+`", re.DOTALL)


def cited_indices(text: str) -> set[int]:
    """The distinct chunk indices cited in ``text``, as written (not shifted)."""
    if "[" not in text:
        return set()
    if "`" in text:
        text = _CODE_RE.sub(" ", text)
    found: set[int] = set()
    for match in _CITATION_RE.finditer(text):
        start, end = match.span()
        if start and text[start - 1].isalnum() and text[start + 1] != "^":  # a footnote
            continue  # follows its word; arr[1] is code
        if text.startswith("(", end):
            continue
        body = match.group(1)
        if body.isdigit():  # the common "[n]"
            found.add(int(body))
            continue
        for part in _PART_RE.finditer(body):
            low = int(part.group(1))
            high = int(part.group(2)) if part.group(2) else low
            if low > high:
                low, high = high, low
            if high - low <= MAX_RANGE:
                found.update(range(low, high + 1))
            else:
                found.update((low, high))
    return found


def answer_citations(p: PreparedTrace) -> set[int]:
    """:func:`cited_indices` of the prepared trace's answer, computed once per trace."""
    if p.cited is None:
        p.cited = cited_indices(p.trace.answer)
    return p.cited


def citation_validity(indices: set[int], n_chunks: int) -> float | None:
    """Share of ``indices`` naming one of ``n_chunks`` chunks (0-based if any is 0)."""
    if not indices:
        return None
    first = 0 if 0 in indices else 1
    valid = sum(1 for i in indices if first <= i < first + n_chunks)
    return valid / len(indices)


class CitationScorer(FamilyScorer):
    """``citation_validity``; flag ``invalid_citation``."""

    name = "citations"

    def score_prepared(self, p: PreparedTrace, out: Scores) -> None:
        validity = citation_validity(answer_citations(p), len(p.trace.chunks))
        if validity is None:
            return
        out.values["citation_validity"] = validity
        if validity < 1.0:
            out.flag("invalid_citation")
