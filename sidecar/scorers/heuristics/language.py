"""Cheap language detection of the query and the answer.

1. **Script.** Letters are counted per script from Unicode ranges (Latin,
   Greek, Cyrillic, Hebrew, Arabic, Devanagari, Thai, Hangul, kana, Han). The
   dominant script must hold at least 60% of the letters and at least 3 of them
   (2 for Han, kana and Hangul). Text whose ASCII letters outnumber its other
   characters 1.5 to 1 (ASCII text, English with curly quotes, French...) is
   Latin without counting per script.
2. **Language.** Non-Latin scripts map to their main language: ``el``, ``ru``
   (any Cyrillic), ``he``, ``ar`` (any Arabic script), ``hi`` (any Devanagari),
   ``th``, ``ko``, ``ja`` (kana make up ≥ 10% of the Han + kana letters) or
   ``zh``. Latin text is decided by a stop-word vote among en, de, fr, es, it,
   pt and nl: the winner needs at least 2 distinct stop-words and at least 1.5
   times the runner-up's count, otherwise the language is unknown.

Flags: ``language_mismatch`` when query and answer are both detected and differ;
``non_english`` when the query is detected and is not English. Lexical scores
(overlap, groundedness) use English stop-words and plural stripping, so they are
less reliable for traces flagged ``non_english``.
"""

from __future__ import annotations

import re
from typing import Final

from ..base import Scores
from ..text import TextTokens, analyse, normalise_token
from .prepared import FamilyScorer, PreparedTrace

# Each list avoids words common in English text (e.g. Portuguese "as", "do",
# "no"; Italian "come", "per"), so that English is usually decided by one subset
# test (see _ENGLISH_ONLY).
_LATIN_WORDS: Final[dict[str, str]] = {
    "en": "the and is are was were what how why which who of to with for this that does "
    "can you have from not",
    "de": "der die das und ist nicht ein eine ich wie mit auf für dem zu von sind wird "
    "auch kann welche warum gibt oder",
    "fr": "le la les et est une des du dans pour que qui pas sur au avec ce je vous il sont "
    "quel quelle comment pourquoi être",
    "es": "el la los las es una del en que por para con se como cómo qué cuál cuáles está "
    "lo su más pero dónde",
    "it": "il lo gli le di che è un una sono con del della cosa perché quale questo nel anche ha",
    "pt": "os de da dos das que não é uma para com em na por como qual quais está são você isso",
    "nl": "de het een en van niet dat die op te met voor zijn wat hoe waarom welke ook "
    "maar kan wordt naar",
}
LATIN_LANGUAGES: Final = tuple(_LATIN_WORDS)
"""Latin-script languages told apart by the stop-word vote."""

_VOTES: Final[dict[str, tuple[int, ...]]] = {}
for _index, _words in enumerate(_LATIN_WORDS.values()):
    for _word in {normalise_token(w) for w in _words.split()}:
        _VOTES[_word] = (*_VOTES.get(_word, ()), _index)
_VOTE_WORDS: Final = frozenset(_VOTES)
# Words that vote for English and no other language: the common all-English case
# is decided by one subset test.
_ENGLISH_ONLY: Final = frozenset(w for w, langs in _VOTES.items() if langs == (0,))

_SCRIPTS: Final = (
    ("latin", re.compile(r"[\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff]+")),
    ("greek", re.compile(r"[\u0370-\u03ff\u1f00-\u1fff]+")),
    ("cyrillic", re.compile(r"[\u0400-\u04ff]+")),
    ("hebrew", re.compile(r"[\u0590-\u05ff]+")),
    ("arabic", re.compile(r"[\u0600-\u06ff\u0750-\u077f]+")),
    ("devanagari", re.compile(r"[\u0900-\u097f]+")),
    ("thai", re.compile(r"[\u0e00-\u0e7f]+")),
    ("hangul", re.compile(r"[\uac00-\ud7af\u1100-\u11ff\u3130-\u318f]+")),
    ("kana", re.compile(r"[\u3040-\u30ff\u31f0-\u31ff]+")),
    ("han", re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf]+")),
)
_SCRIPT_LANGUAGE: Final = {
    "greek": "el",
    "cyrillic": "ru",
    "hebrew": "he",
    "arabic": "ar",
    "devanagari": "hi",
    "thai": "th",
    "hangul": "ko",
}
_DENSE_SCRIPTS: Final = frozenset({"cjk", "hangul"})


_NON_LETTER_BYTES: Final = bytes(c for c in range(128) if not chr(c).isalpha())


def _script_counts(text: str) -> dict[str, int]:
    """Letters per script (Latin only when Latin surely holds 60% of them)."""
    ascii_part = text.encode("ascii", "ignore")
    ascii_letters = len(ascii_part.translate(None, _NON_LETTER_BYTES))
    non_ascii = len(text) - len(ascii_part)
    if ascii_letters >= 1.5 * non_ascii:  # e.g. English with curly quotes, or French
        return {"latin": ascii_letters + non_ascii}
    counts = {"latin": ascii_letters} if ascii_letters else {}
    for script, pattern in _SCRIPTS:
        n = sum(map(len, pattern.findall(text)))
        if n:
            counts[script] = counts.get(script, 0) + n
    return counts


def _vote(words: frozenset[str]) -> str | None:
    hits = words & _VOTE_WORDS
    if len(hits) < 2:
        return None
    if hits <= _ENGLISH_ONLY:
        return "en"
    counts = [0] * len(LATIN_LANGUAGES)
    for word in hits:
        for index in _VOTES[word]:
            counts[index] += 1
    ranked = sorted(range(len(counts)), key=counts.__getitem__, reverse=True)
    best, second = counts[ranked[0]], counts[ranked[1]]
    if best >= 2 and best >= 1.5 * second:
        return LATIN_LANGUAGES[ranked[0]]
    return None


def detect_language(text: str, tokens: TextTokens | None = None) -> str | None:
    """A language code for ``text`` (``en``, ``de``, ``ru``, ``zh``, ...), or None
    when not confident. ``tokens`` (its :func:`~sidecar.scorers.text.analyse`)
    saves re-tokenising."""
    if not text.isascii():
        counts = _script_counts(text)
        total = sum(counts.values())
        if not total:
            return None
        kana, han = counts.pop("kana", 0), counts.pop("han", 0)
        if kana + han:  # Japanese mixes kana and Han: count them as one script
            counts["cjk"] = kana + han
        script = max(counts, key=counts.__getitem__)
        n = counts[script]
        if n < 0.6 * total or n < (2 if script in _DENSE_SCRIPTS else 3):
            return None
        if script == "cjk":
            return "ja" if kana >= 0.1 * n else "zh"
        if script != "latin":
            return _SCRIPT_LANGUAGE[script]
    words = (tokens if tokens is not None else analyse(text)).words
    return _vote(words)


class LanguageScorer(FamilyScorer):
    """Flags ``language_mismatch``, ``non_english``."""

    name = "language"

    def score_prepared(self, p: PreparedTrace, out: Scores) -> None:
        query = detect_language(p.trace.query, p.query)
        if query is not None and query != "en":
            out.flag("non_english")
        if query is None or p.answer_blank:
            return
        answer = detect_language(p.trace.answer, p.answer)
        if answer is not None and answer != query:
            out.flag("language_mismatch")
