"""Answers that decline to answer (English).

The answer's opening (its first :data:`REFUSAL_WINDOW` characters, lowercased,
curly apostrophes folded) is searched for any of :data:`REFUSAL_PATTERNS`:

* "I don't know" / "I do not know";
* "I cannot / can't / am unable to / was unable to find | answer | determine |
  provide | locate | help | see | say";
* "unable to answer | find | determine | provide";
* "not (mentioned | included | found | available | present | provided |
  specified) in the (provided | given | supplied | available | retrieved)
  context | documents | sources | passages | text | information";
* "the context | documents | sources | passages | text does not | doesn't
  contain | include | provide | mention | specify | say";
* "I'm sorry, but I can't | cannot | am unable | don't | do not";
* "no (relevant | specific | such) information (about | on | regarding | in |
  available | is available | was found | provided)", "contains no information";
* "I don't have (enough | sufficient | any | the) information | context | data |
  details";
* "not enough | insufficient information | context";
* "cannot / can't be answered | determined (from | based on | with | using)".

A phrase later in a long answer is a caveat, not a refusal, hence the window.
"""

from __future__ import annotations

import re
from typing import Final

from ..base import Scores
from .prepared import FamilyScorer, PreparedTrace

REFUSAL_WINDOW: Final = 300
"""How many leading characters of the answer are searched."""

REFUSAL_PATTERNS: Final[tuple[str, ...]] = (
    r"\bi (?:do not|don't|dont) know\b",
    r"\bi (?:cannot|can't|can not|could not|couldn't|am unable to|'m unable to|was unable to)"
    r" (?:find|answer|determine|provide|locate|help|see|say)\b",
    r"\bunable to (?:answer|find|determine|provide)\b",
    r"\bnot (?:(?:mentioned|included|found|available|present|provided|specified) )?in the "
    r"(?:(?:provided|given|supplied|available|retrieved) )?"
    r"(?:context|documents?|sources?|passages?|text|information)\b",
    r"\b(?:context|documents?|sources?|passages?|text) (?:does not|doesn't|do not|don't) "
    r"(?:contain|include|provide|mention|specify|say)\b",
    r"\bi'?m sorry,? (?:but )?i (?:can't|cannot|can not|am unable|'m unable|don't|do not)\b",
    r"\bno (?:(?:relevant|specific|such) )?information (?:about|on|regarding|in|available"
    r"|is available|was found|provided)\b",
    r"\bcontains? no (?:relevant )?information\b",
    r"\bi (?:do not|don't) have (?:(?:enough|sufficient|any|the) )?"
    r"(?:information|context|data|details)\b",
    r"\b(?:not enough|insufficient) (?:information|context)\b",
    r"\b(?:cannot|can't|can not) be (?:answered|determined) (?:from|based on|with|using)\b",
)
"""The refusal phrasings (lowercase regex sources), searched as one alternation."""

_REFUSAL_RE: Final = re.compile("|".join(f"(?:{p})" for p in REFUSAL_PATTERNS))
_APOSTROPHES: Final = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})
# Pre-check on the answer's token set (a superset of the window's tokens): the
# tokens each pattern above cannot match without. Keep in step with
# REFUSAL_PATTERNS; a test checks it on every documented phrasing.
_ALONE: Final = frozenset(
    {"i", "im", "unable", "sorry", "enough", "insufficient", "answered", "determined"}
)
_NOUNS: Final = frozenset({"context", "document", "source", "passage", "text"})
_NOT_WITH: Final = _NOUNS | {"information"}


def may_be_refusal(words: frozenset[str]) -> bool:
    """A cheap necessary condition for :func:`is_refusal`, from the answer's tokens."""
    if not _ALONE.isdisjoint(words):  # patterns with "i", "unable", "sorry", ...
        return True
    if "not" in words and not _NOT_WITH.isdisjoint(words):  # "not in the context"
        return True
    if "t" in words and not _NOUNS.isdisjoint(words):  # "the text doesn't say"
        return True
    return "no" in words and "information" in words  # "no information about"


def is_refusal(answer: str) -> bool:
    """Whether ``answer`` opens with a refusal phrasing."""
    head = answer[:REFUSAL_WINDOW].lower()
    if not head.isascii():
        head = head.translate(_APOSTROPHES)
    return _REFUSAL_RE.search(head) is not None


def answer_is_refusal(p: PreparedTrace) -> bool:
    """:func:`is_refusal` of the prepared trace's answer, computed once per trace."""
    if p.refusal is None:
        p.refusal = may_be_refusal(p.answer.words) and is_refusal(p.trace.answer)
    return p.refusal


class RefusalScorer(FamilyScorer):
    """Flag ``refusal``."""

    name = "refusal"

    def score_prepared(self, p: PreparedTrace, out: Scores) -> None:
        if answer_is_refusal(p):
            out.flag("refusal")
