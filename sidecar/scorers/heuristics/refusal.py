"""Answers that decline to answer (English).

The answer's opening (its first :data:`REFUSAL_WINDOW` characters, lowercased,
curly apostrophes folded) is searched for these phrasings (words may be
separated by any whitespace):

* "I don't know" / "I do not know" / "I dont know";
* "I cannot / can't / can not / could not / couldn't / am unable to / 'm unable
  to / was unable to / am not able to / 'm not able to" + "find | answer |
  determine | provide | locate | help (not "help but") | see | say";
* "I'm sorry, but I can't | cannot | can not | am unable | 'm unable | don't | do
  not" (also "Im sorry");
* "I don't / do not have (access to)? (up to two of enough | sufficient | any |
  the | that | this | specific | relevant | more) information | context | data |
  details";
* "unable to answer | find | determine | provide";
* "not (mentioned | included | found | available | present | provided |
  specified) in the (provided | given | supplied | available | retrieved)
  context | document(s) | source(s) | passage(s) | text | information";
* "not enough | insufficient information | context";
* "the context | document(s) | source(s) | passage(s) | text does not | doesn't
  | do not | don't contain | include | provide | mention | specify | say";
* "no (relevant | specific | such) information about | on | regarding | in |
  available | is available | was found | provided"; "contain(s) no
  (relevant) information";
* "cannot / can't / can not be answered | determined from | based on | with |
  using".

A phrase later in a long answer is a caveat, not a refusal, hence the window;
a phrase right after an opening quote is quoted, not said ('Reply "I don't
know" when...').

Speed: each rule is a regex that starts with a literal (so the regex engine
skips ahead quickly) and runs only when the answer contains the tokens it cannot
match without (its *gate*).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from ..base import Scores
from ..text import analyse
from .prepared import FamilyScorer, PreparedTrace

REFUSAL_WINDOW: Final = 300
"""How many leading characters of the answer are searched."""

_VERB = r"(?:find|answer|determine|provide|locate|help(?! but\b)|see|say)"
_NOUN = r"(?:context|documents?|sources?|passages?|text|information)"


@dataclass(frozen=True, slots=True)
class RefusalRule:
    """One family of refusal phrasings."""

    gate: tuple[frozenset[str], ...]
    """Token sets that must each meet the answer's tokens for the rule to run."""
    pattern: re.Pattern[str]
    """Searched in the lowercased opening; starts with a literal word."""
    after: frozenset[str] | None = None
    """If set, the word just before the match must be one of these."""


def _rule(
    gate: tuple[set[str], ...], literal: str, rest: str, after: set[str] | None = None
) -> RefusalRule:
    # The look-behinds, placed after the literal, make it start a word that no
    # opening quote precedes; a space in ``rest`` stands for any run of whitespace.
    start = re.escape(literal)
    tail = rest.replace(" ", r"\s+")
    regex = re.compile(f'{start}(?<![^\\W_]{start})(?<!["\u201c]{start}){tail}')
    return RefusalRule(
        tuple(frozenset(g) for g in gate), regex, None if after is None else frozenset(after)
    )


_NOUNS: Final = frozenset(
    {"context", "document", "documents", "source", "sources", "passage", "passages", "text"}
)
REFUSAL_RULES: Final[tuple[RefusalRule, ...]] = (
    _rule(
        ({"i", "im"},),
        "i",
        r"(?: (?:do not|don't|dont) know"
        rf"| (?:cannot|can't|can not|could not|couldn't|am unable to|was unable to) {_VERB}"
        rf"| am not able to {_VERB}|'m (?:not able|unable) to {_VERB}"
        r"|'?m sorry,? (?:but )?i (?:can't|cannot|can not|am unable|'m unable|don't|do not)"
        r"| (?:do not|don't) have (?:access to )?"
        r"(?:(?:enough|sufficient|any|the|that|this|specific|relevant|more) ){0,2}"
        r"(?:information|context|data|details))\b",
    ),
    _rule(({"unable"},), "unable", r" to (?:answer|find|determine|provide)\b"),
    _rule(
        ({"not"}, {"context", "document", "source", "passage", "text", "information"}),
        "not",
        r" (?:enough (?:information|context)"
        r"|(?:(?:mentioned|included|found|available|present|provided|specified) )?in the "
        rf"(?:(?:provided|given|supplied|available|retrieved) )?{_NOUN})\b",
    ),
    _rule(({"insufficient"},), "insufficient", r" (?:information|context)\b"),
    _rule(
        ({"context", "document", "source", "passage", "text"}, {"not", "t"}),
        "do",
        r"(?:es not|esn't| not|n't) (?:contain|include|provide|mention|specify|say)\b",
        after=set(_NOUNS),
    ),
    _rule(
        ({"no"}, {"information"}),
        "no",
        r" (?:(?:relevant|specific|such) )?information (?:about|on|regarding|in"
        r"|available|is available|was found|provided)\b",
    ),
    _rule(({"no"}, {"information"}), "contain", r"s? no (?:relevant )?information\b"),
    _rule(
        ({"answered", "determined"},),
        "can",
        r"(?:not|'t| not) be (?:answered|determined) (?:from|based on|with|using)\b",
    ),
)
"""The refusal rules, tried in order."""

_ANY_GATE: Final = frozenset().union(*(rule.gate[0] for rule in REFUSAL_RULES))
_APOSTROPHES: Final = ("\u2019", "\u2018", "\u02bc")


def is_refusal(answer: str, words: frozenset[str] | None = None) -> bool:
    """Whether ``answer`` opens with a refusal phrasing.

    ``words`` (the answer's :attr:`~sidecar.scorers.text.TextTokens.words`, or
    any superset of its opening's tokens) saves re-tokenising for the gates.
    """
    head = answer[:REFUSAL_WINDOW].lower()
    if not head.isascii():
        for apostrophe in _APOSTROPHES:
            head = head.replace(apostrophe, "'")
    if words is None:
        words = analyse(head).words
    if _ANY_GATE.isdisjoint(words):
        return False
    for rule in REFUSAL_RULES:
        for gate in rule.gate:
            if gate.isdisjoint(words):
                break
        else:
            for match in rule.pattern.finditer(head):
                if rule.after is None:
                    return True
                before = head[: match.start()].rsplit(None, 1)
                if before and before[-1] in rule.after:
                    return True
    return False


def answer_is_refusal(p: PreparedTrace) -> bool:
    """:func:`is_refusal` of the prepared trace's answer, computed once per trace."""
    if p.refusal is None:
        p.refusal = is_refusal(p.trace.answer, p.answer.words)
    return p.refusal


class RefusalScorer(FamilyScorer):
    """Flag ``refusal``."""

    name = "refusal"

    def score_prepared(self, p: PreparedTrace, out: Scores) -> None:
        if answer_is_refusal(p):
            out.flag("refusal")
