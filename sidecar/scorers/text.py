"""Fast, dependency-free text helpers shared by the heuristic scorers.

Tokens are maximal runs of Unicode letters and digits (``[^\\W_]+``: ``\\w``
without the underscore), lowercased. One light normalisation makes plurals meet
their singular: a trailing ``s`` is stripped from tokens longer than three
characters unless the token ends in ``ss`` ("models" → "model", "class" stays,
"this" → "thi"). It is deliberately crude, but it is applied identically to the
query, the answer, the chunks and every word list, so matches stay consistent.

Chinese and Japanese are written without spaces: each Han or kana character is
a token of its own (as in sacreBLEU's ``zh`` tokenizer), so a paraphrase meets
its chunk and lengths count characters. Words of the Brahmic scripts (Hindi, Tamil,
Bengali...) keep their vowel signs (combining marks). Non-ASCII text is NFKC-normalised first
(PDF ligatures, full-width forms and decomposed accents meet their plain forms).

Contractions are split first (:func:`uncontract`: "doesn't" → "does not", "it's" →
"it"). *Content tokens* are the normalised tokens minus :data:`STOP_WORDS`; numbers are
kept (a hallucinated figure should count against groundedness). Everything runs
in C: ASCII text (also text whose only non-ASCII characters are common
punctuation such as curly quotes and dashes) takes a fast path (one
``bytes.translate`` that lowercases and blanks punctuation, one regex
substitution, ``split``), other text one NFKC ``normalize``, one ``lower``, one
substitution and one ``findall``; then set algebra. :meth:`TokenCache.analyse` gives the same result
faster: it splits without the plural substitution and normalises each token
through a memo of the tokens seen so far.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from collections import OrderedDict
from collections.abc import Iterable
from typing import Final, NamedTuple

__all__ = [
    "STOP_WORDS",
    "CachedText",
    "TextTokens",
    "TokenCache",
    "analyse",
    "content_tokens",
    "normalise_token",
    "tokenize",
]

# Han and kana letters (iteration marks, hiragana, katakana, CJK ideographs and
# extensions A and B): every one is a word character.
_CJK: Final = (
    "\u3005\u3007\u3041-\u3096\u309d-\u309f\u30a1-\u30fa\u30fc-\u30ff\u31f0-\u31ff"
    "\u3400-\u4dbf\u4e00-\u9fff\U00020000-\U0002a6df"
)
WORD_RE: Final = re.compile(rf"[{_CJK}]|[^\W_{_CJK}]+")
"""A token: one Han/kana character, or a run of other Unicode letters/digits
(underscores split tokens)."""
# The same tokens for text without Han or kana (a third faster), and the cheap test
# that picks it: no character from the CJK radicals on (nothing whose NFKC form is
# Han or kana, no full-width form).
_RUN_RE: Final = re.compile(r"[^\W_]+")
_MAY_HOLD_CJK_RE: Final = re.compile("[\u2e80-\U0002fa1f\U00030000-\U0003134f]")
# Brahmic scripts of South Asia (Devanagari to Sinhala) write vowel signs and viramas as
# combining marks, which are not word characters to ``re``: "भारत" split into "भ" "रत".
# In text holding them, every character of those blocks but the dandas joins a word.
_INDIC: Final = "\u0900-\u0963\u0966-\u0dff"
_MAY_HOLD_INDIC_RE: Final = re.compile(f"[{_INDIC}]")
_MAY_HOLD_EITHER_RE: Final = re.compile(f"[{_INDIC}\u2e80-\U0002fa1f\U00030000-\U0003134f]")
_RUN_INDIC_RE: Final = re.compile(rf"(?:[^\W_]|[{_INDIC}])+")
_WORD_INDIC_RE: Final = re.compile(rf"[{_CJK}]|(?:[^\W_{_CJK}]|[{_INDIC}])+")

# Strip the "s" of a token that has >= 3 word characters before it, the last of
# which is not an "s", and no word character after it (Han and kana characters
# are tokens of their own). Starting the pattern with the literal "s" lets the
# regex engine skip ahead quickly.
_PLURAL_RE: Final = re.compile(rf"s(?<=[^\W_{_CJK}]{{2}}[^\W_s{_CJK}]s)(?![^\W_{_CJK}])")
# The same rule for ASCII bytes already lowercased and stripped of punctuation.
_PLURAL_ASCII_RE: Final = re.compile(rb"s(?<=[a-z0-9]{2}[a-rt-z0-9]s)(?![a-z0-9])")
# ASCII fast path: a byte table that lowercases letters, keeps digits and turns
# every other byte into a space.
_ASCII_TABLE: Final = bytes(
    c + 32 if 65 <= c <= 90 else c if chr(c).isalnum() and c < 128 else 32 for c in range(256)
)

# Non-ASCII punctuation common in LLM answers (curly quotes, dashes, bullets,
# no-break space...): none is a word character, so turning them into spaces
# changes no token, and often lets the text take the ASCII fast path.
_COMMON_PUNCTUATION: Final = tuple(
    "\u2019\u2018\u201c\u201d\u2014\u2013\u2026\u2022\u00a0\u00b7\u00ab\u00bb\u20ac\u00b0\u2192\u200b"
)

# Full-width punctuation of Chinese text: NFKC maps each to ASCII punctuation (no token
# changes), but any of them sends ``unicodedata.normalize`` down its slow path.
_FULLWIDTH_PUNCTUATION: Final = tuple("\uff0c\uff1f\uff01\uff1a\uff1b\uff08\uff09")

_RAW_STOP_WORDS: Final = """
a about above after again against all also am an and any are as at be because
been before being below between both but by can could did do does doing down
during each either else etc even ever every few for from further get got had has
have having he her here hers herself him himself his how however i if in into is
it its itself just let like may me might more most much must my myself neither
no nor not now of off often on once one only or other otherwise our ours
ourselves out over own per please rather same shall she should since so some
such than that the their theirs them themselves then there these they this those
though through thus to too under until up upon us very via was we were what
whatever when where whether which while who whom whose why will with within
without would yet you your yours yourself yourselves
ain aren ca couldn didn doesn hadn hasn haven isn ll mightn mustn needn re s sha
shouldn t ve wasn weren wo wouldn
"""
# Contractions are split before tokenising ("doesn't" -> "does not", "it's" -> "it",
# "can't" -> "ca not"): the stems left are stop words, while "won", "don", "d", "m" stay
# words ("Argentina won", "vitamin D", "30 m").
_CLITIC_RE: Final = re.compile(r"(n)?['\u2019](?(1)t|(?:s|d|m|ll|re|ve))\b", re.IGNORECASE)


def _unclitic(match: re.Match[str]) -> str:
    return " " if match.group(1) is None else " not"


def uncontract(text: str) -> str:
    """``text`` with English contractions split off (see :data:`STOP_WORDS`)."""
    if "'" in text or "\u2019" in text:
        return _CLITIC_RE.sub(_unclitic, text)
    return text


def normalise_token(token: str) -> str:
    """Apply the plural rule to one lowercased token (same as :func:`tokenize`)."""
    if len(token) > 3 and token[-1] == "s" and token[-2] != "s":
        return token[:-1]
    return token


STOP_WORDS: Final[frozenset[str]] = frozenset(
    normalise_token(w) for w in _RAW_STOP_WORDS.split()
) | frozenset(_RAW_STOP_WORDS.split())
"""English stop-words and the stems contractions leave, raw and normalised (~190 words)."""


def _fold(text: str) -> tuple[str, re.Pattern[str]]:
    """Non-ASCII ``text`` NFKC-normalised and lowercased, and the regex of its tokens."""
    try:  # Latin-1 only (most accented Latin text): a copy in C, no regex scan
        text.encode("latin-1")
    except UnicodeEncodeError:
        pass
    else:
        return unicodedata.normalize("NFKC", text).lower(), _RUN_RE
    if _MAY_HOLD_EITHER_RE.search(text) is None:  # Greek, Cyrillic...: one scan
        return unicodedata.normalize("NFKC", text).lower(), _RUN_RE
    indic = _MAY_HOLD_INDIC_RE.search(text) is not None
    if _MAY_HOLD_CJK_RE.search(text) is None:
        return unicodedata.normalize("NFKC", text).lower(), _RUN_INDIC_RE if indic else _RUN_RE
    for char in _FULLWIDTH_PUNCTUATION:
        if char in text:
            text = text.replace(char, " ")
    return unicodedata.normalize("NFKC", text).lower(), _WORD_INDIC_RE if indic else WORD_RE


def tokenize(text: str) -> list[str]:
    """Lowercased, normalised word tokens of ``text``, in order."""
    text = uncontract(text)
    if not text.isascii():
        for char in _COMMON_PUNCTUATION:
            if char in text:
                text = text.replace(char, " ")
        if not text.isascii():
            folded, words = _fold(text)
            if words is _RUN_INDIC_RE or words is _WORD_INDIC_RE:  # marks join words: the
                return [normalise_token(t) for t in words.findall(folded)]  # rule per token
            return words.findall(_PLURAL_RE.sub("", folded))
    raw = _PLURAL_ASCII_RE.sub(b"", text.encode("ascii").translate(_ASCII_TABLE))
    return raw.decode("ascii").split()


def _raw_tokens(text: str) -> list[str]:
    """Lowercased word tokens of ``text`` before the plural rule (:func:`tokenize` without it).

    The plural rule only ever drops the last character of a token, so it can be applied
    token by token afterwards (:func:`normalise_token`) with the same result.
    """
    text = uncontract(text)
    if not text.isascii():
        for char in _COMMON_PUNCTUATION:
            if char in text:
                text = text.replace(char, " ")
        if not text.isascii():
            folded, words = _fold(text)
            return words.findall(folded)
    return text.encode("ascii").translate(_ASCII_TABLE).decode("ascii").split()


def content_tokens(text: str) -> frozenset[str]:
    """The set of content tokens of ``text`` (no stop-words)."""
    return frozenset(tokenize(text)) - STOP_WORDS


class TextTokens(NamedTuple):
    """A query's or answer's text, analysed once per trace."""

    n_tokens: int
    """Number of word tokens."""
    words: frozenset[str]
    """All distinct normalised tokens, stop-words included."""
    content: frozenset[str]
    """Distinct content tokens (``words`` minus stop-words)."""


def analyse(text: str) -> TextTokens:
    """Tokenise ``text`` once into a :class:`TextTokens`."""
    tokens = tokenize(text)
    words = frozenset(tokens)
    return TextTokens(len(tokens), words, words - STOP_WORDS)


class CachedText(NamedTuple):
    """What :class:`TokenCache` keeps per chunk text."""

    tokens: frozenset[str]
    """Content tokens."""
    fingerprint: int
    """Hash of the whitespace-collapsed, lowercased text (duplicate detection)."""
    blank: bool
    """True when the text is empty or only whitespace."""


def _analyse_chunk(text: str) -> CachedText:
    # Interned: the vocabulary is shared by all cached chunks instead of every
    # chunk holding its own copy of each word.
    tokens = frozenset(map(sys.intern, frozenset(tokenize(text)) - STOP_WORDS))
    normalised = " ".join(text.lower().split())
    return CachedText(tokens, hash(normalised), not normalised)


class _Normalised(dict[str, str]):
    """Raw token → :func:`normalise_token` of it, filled on first sight.

    Words recur across traces, so a dict lookup replaces the plural rule for almost every
    token. Emptied when it reaches ``limit`` entries (a bound, not an LRU: rebuilding it
    costs little).
    """

    __slots__ = ("limit",)

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def __missing__(self, token: str) -> str:
        if len(self) >= self.limit:
            self.clear()
        normal = self[token] = normalise_token(token)
        return normal


VOCABULARY_SIZE: Final = 50_000
"""Distinct raw tokens :meth:`TokenCache.analyse` remembers (~8 MB at most)."""


class TokenCache:
    """A bounded LRU cache: chunk text → :class:`CachedText`; also analyses queries and answers.

    Popular chunks recur across traces, so each is tokenised once. ``hits`` and
    ``misses`` are plain int counters for a metrics collector to read. Keys are
    the chunk texts themselves; with the token set, an entry for a ~100-word
    chunk takes about 3 KB (tokens are interned, so words are shared), i.e.
    ~150 MB at the default 50,000 entries. ``max_entries=0`` disables caching.
    Meant for one event loop / thread; it is not locked.
    """

    __slots__ = ("_entries", "_normal", "hits", "max_entries", "misses")

    def __init__(self, max_entries: int = 50_000) -> None:
        if max_entries < 0:
            raise ValueError("max_entries must be >= 0")
        self.max_entries = max_entries
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[str, CachedText] = OrderedDict()
        self._normal = _Normalised(VOCABULARY_SIZE)

    def analyse(self, text: str) -> TextTokens:
        """:func:`analyse` of ``text`` (the same result), normalising tokens through a memo."""
        tokens = _raw_tokens(text)
        words = frozenset(map(self._normal.__getitem__, tokens))
        return TextTokens(len(tokens), words, words - STOP_WORDS)

    def lookup_all(self, texts: Iterable[str]) -> list[CachedText]:
        """:meth:`lookup` of each text, in order (one call per trace, not per chunk)."""
        entries = self._entries
        get, refresh = entries.get, entries.move_to_end
        out: list[CachedText] = []
        hits = 0
        for text in texts:
            entry = get(text)
            if entry is None:
                entry = self.lookup(text)
            else:
                hits += 1
                refresh(text)
            out.append(entry)
        self.hits += hits
        return out

    def lookup(self, text: str) -> CachedText:
        """The analysis of ``text``, computed on a miss and remembered."""
        entries = self._entries
        entry = entries.get(text)
        if entry is not None:
            self.hits += 1
            entries.move_to_end(text)
            return entry
        self.misses += 1
        entry = _analyse_chunk(text)
        if self.max_entries:
            entries[text] = entry
            if len(entries) > self.max_entries:
                entries.popitem(last=False)
        return entry

    def get(self, text: str) -> frozenset[str]:
        """The content tokens of ``text`` (cached)."""
        return self.lookup(text).tokens

    def clear(self) -> None:
        """Drop every entry (the counters are kept)."""
        self._entries.clear()
        self._normal.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, text: object) -> bool:
        return text in self._entries
