"""Answer length, emptiness and conciseness.

``conciseness`` compares the answer's token count ``n`` with a budget::

    budget = min(concise_max_tokens,
                 max(concise_min_tokens, concise_query_ratio × query_tokens))
    conciseness = 1                 if n <= budget
                  budget / n        otherwise

So an answer is never penalised below ``concise_min_tokens`` (default 40), is
always penalised above ``concise_max_tokens`` (150), and in between is allowed
``concise_query_ratio`` (20) tokens per query token: a 300-token essay answering
a 3-word question scores 60/300 = 0.2. The decay is continuous at the budget.
Blank answers get ``empty_answer`` and no conciseness.
"""

from __future__ import annotations

from ..base import Scores
from .prepared import FamilyScorer, PreparedTrace


class LengthScorer(FamilyScorer):
    """``answer_length``, ``conciseness``; flag ``empty_answer``."""

    name = "length"

    def score_prepared(self, p: PreparedTrace, out: Scores) -> None:
        if p.answer_blank:
            out.values["answer_length"] = 0.0
            out.flag("empty_answer")
            return
        n = p.answer.n_tokens
        out.values["answer_length"] = float(n)
        s = self.settings
        budget = min(
            float(s.concise_max_tokens),
            max(float(s.concise_min_tokens), s.concise_query_ratio * p.query.n_tokens),
        )
        out.values["conciseness"] = 1.0 if n <= budget else budget / n
