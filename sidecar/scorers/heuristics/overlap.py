"""Lexical overlap between the query, the answer and the chunks.

All three are shares of distinct content tokens (see :mod:`sidecar.scorers.text`):

* ``groundedness_lexical`` = |answer ∩ context| / |answer|;
* ``answer_query_overlap`` = |query ∩ answer| / |query|;
* ``context_query_overlap`` = |query ∩ context| / |query|;

where *context* is the union of the non-blank chunks, and the answer's tokens
leave out the numbers of its citations (the "2" of "[2]" or "[^2]", the "doc2" of
"[doc2]": markers, not claims the chunks should hold). A value is omitted when its
denominator is empty, when the answer is blank (answer-side values) or when
there is no non-blank chunk (context-side values): the ``empty_answer`` and
``empty_retrieval`` flags say why. ``low_groundedness`` is not raised for
refusals. For non-English traces (``non_english``) these scores are unreliable:
the stop-word list and plural rule are English.
"""

from __future__ import annotations

from ..base import Scores
from .citations import answer_citations
from .prepared import FamilyScorer, PreparedTrace
from .refusal import answer_is_refusal


def _uncovered(tokens: frozenset[str], sets: list[frozenset[str]]) -> int:
    """How many of ``tokens`` appear in none of ``sets``."""
    rest = tokens
    for other in sets:
        rest = rest - other  # iterates the (shrinking) rest, not the chunk
        if not rest:
            return 0
    return len(rest)


class OverlapScorer(FamilyScorer):
    """``groundedness_lexical``, ``answer_query_overlap``, ``context_query_overlap``;
    flag ``low_groundedness``."""

    name = "overlap"

    def score_prepared(self, p: PreparedTrace, out: Scores) -> None:
        values = out.values
        query = p.query.content
        answer_blank = p.answer_blank
        answer = p.answer.content if not answer_blank else frozenset()
        if cited := answer_citations(p):
            answer = answer.difference(map(str, cited), [f"doc{i}" for i in cited])
        if query and not answer_blank:
            values["answer_query_overlap"] = len(query & answer) / len(query)
        context = [c.tokens for c in p.chunks if not c.blank]
        if not context:
            return
        if query:
            values["context_query_overlap"] = 1.0 - _uncovered(query, context) / len(query)
        if answer:
            grounded = 1.0 - _uncovered(answer, context) / len(answer)
            values["groundedness_lexical"] = grounded
            if grounded < self.settings.low_groundedness and not answer_is_refusal(p):
                out.flag("low_groundedness")
