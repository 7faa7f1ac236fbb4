"""Checking what the judge asserted against the texts it was shown.

Small judges are credulous (they call most hallucinations "supported"), so
every verdict code can check is checked, against the judge's own view of the
trace (:class:`~.prompts.JudgeInput`: redacted and truncated as sent):

* a ``supported`` or ``contradicted`` claim must carry a quote found in a chunk:
  words compared lowercased and plural-normalised, punctuation ignored, ``…``
  splitting a quote into parts; a quote of 5+ words may differ in 1 word in 5
  (the best window of the quote's length in the chunk must share 80 % of its
  words). A quote found in another chunk than the cited one corrects the index;
* a ``supported`` claim's numbers and capitalised names (not sentence-initial,
  not stop-words) must appear in some chunk or in the question;
* a reference fact's chunk must exist and hold the fact's numbers and names
  (else its chunk becomes null), and a fact the judge calls ``stated`` must have
  its numbers and names in the answer (else ``missing``).

Whatever fails is downgraded (``not_in_context`` / null chunk / ``missing``)
with ``verified: false`` and a reason; callers count the downgrades.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from ..text import STOP_WORDS, tokenize
from .parse import ClaimOut, FactOut, FactVerdict, Verdict
from .prompts import JudgeInput

_NUMBER_RE: Final = re.compile(r"\d+(?:[.,:]\d+)*")
_CAPITALISED_RE: Final = re.compile(r"(?<![\w'’-])[A-Z][\w'’-]*")
_SENTENCE_END_RE: Final = re.compile(r"[.!?:;]\s*$")
_ELLIPSIS_RE: Final = re.compile(r"\.\.\.+|…")
_NUMBER_WORDS: Final = {
    word: str(i)
    for i, word in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen "  # noqa: SIM905
        "fourteen fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
} | {"thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "ninety": "90", "hundred": "100"}
FUZZY_MIN_WORDS: Final = 5
FUZZY_MIN_SHARE: Final = 0.8


@dataclass(slots=True)
class CheckedClaim:
    """A claim after verification (``chunk_index`` is 0-based)."""

    claim: str
    verdict: Verdict
    judge_verdict: Verdict
    chunk_index: int | None
    quote: str
    verified: bool
    reason: str | None = None


@dataclass(slots=True)
class CheckedFact:
    """A reference fact after verification (``chunk_index`` is 0-based)."""

    fact: str
    answer: FactVerdict
    judge_answer: FactVerdict
    chunk_index: int | None
    verified: bool
    reason: str | None = None


def numbers(text: str) -> set[str]:
    """Numbers in ``text`` with thousands separators removed ("1,000" → "1000")."""
    found = set()
    for match in _NUMBER_RE.findall(text):
        found.add(match.replace(",", "") if re.fullmatch(r"\d{1,3}(,\d{3})+", match) else match)
    return found


def names(text: str) -> set[str]:
    """Normalised tokens of capitalised words that do not start a sentence."""
    found: set[str] = set()
    for match in _CAPITALISED_RE.finditer(text):
        before = text[: match.start()]
        if not before.strip() or _SENTENCE_END_RE.search(before):
            continue
        for token in tokenize(match.group()):
            if token not in STOP_WORDS and not token.isdigit():
                found.add(token)
    return found


class Evidence:
    """Numbers and word tokens of a set of texts, for membership tests."""

    __slots__ = ("numbers", "words")

    def __init__(self, texts: Iterable[str]) -> None:
        self.numbers: set[str] = set()
        self.words: set[str] = set()
        for text in texts:
            self.numbers |= numbers(text)
            tokens = tokenize(text)
            self.words.update(tokens)
            self.numbers.update(_NUMBER_WORDS[t] for t in tokens if t in _NUMBER_WORDS)

    def missing(self, text: str) -> str | None:
        """The first number or name of ``text`` absent here, as a reason, or None."""
        for number in sorted(numbers(text)):
            if number not in self.numbers:
                return f"number_not_in_context:{number}"
        for name in sorted(names(text)):
            if name not in self.words:
                return f"name_not_in_context:{name}"
        return None


def _window_share(part: list[str], chunk: list[str]) -> float:
    """Best share of ``part``'s words found in any window of its length in ``chunk``."""
    n = len(part)
    if n > len(chunk):
        n = len(chunk)
    if n == 0:
        return 0.0
    want = Counter(part)
    have = Counter(chunk[:n])
    overlap = sum((want & have).values())
    best = overlap
    for i in range(n, len(chunk)):
        incoming, outgoing = chunk[i], chunk[i - n]
        if incoming != outgoing:
            if have[incoming] < want[incoming]:
                overlap += 1
            have[incoming] += 1
            have[outgoing] -= 1
            if have[outgoing] < want[outgoing]:
                overlap -= 1
            best = max(best, overlap)
    return best / len(part)


def quote_in(quote: str, chunk_tokens: list[str], chunk_joined: str) -> bool:
    """Whether ``quote`` occurs in a chunk (tokens and their space-joined form)."""
    parts = [tokenize(p) for p in _ELLIPSIS_RE.split(quote)]
    parts = [p for p in parts if p]
    if not parts:
        return False
    for part in parts:
        if f" {' '.join(part)} " in chunk_joined:
            continue
        if len(part) < FUZZY_MIN_WORDS or _window_share(part, chunk_tokens) < FUZZY_MIN_SHARE:
            return False
    return True


class Verifier:
    """Verifies claims and reference facts against one :class:`JudgeInput`."""

    def __init__(self, inp: JudgeInput) -> None:
        self.inp = inp
        self._tokens = [tokenize(c) for c in inp.chunks]
        self._joined = [f" {' '.join(t)} " for t in self._tokens]
        self._context = Evidence([*inp.chunks, inp.query])
        self._per_chunk: dict[int, Evidence] = {}
        self._answer: Evidence | None = None

    def _index(self, chunk: int | None) -> int | None:
        if chunk is None or not 1 <= chunk <= len(self.inp.chunks):
            return None
        return chunk - 1

    def _find_quote(self, quote: str, cited: int | None) -> int | None:
        order = list(range(len(self._tokens)))
        if cited is not None:
            order.remove(cited)
            order.insert(0, cited)
        for i in order:
            if quote_in(quote, self._tokens[i], self._joined[i]):
                return i
        return None

    def claim(self, c: ClaimOut) -> CheckedClaim:
        """Check one claim; downgrade it to ``not_in_context`` when it fails."""
        cited = self._index(c.chunk)
        out = CheckedClaim(c.claim, c.verdict, c.verdict, cited, c.quote, True)
        if c.verdict == "not_in_context":
            out.chunk_index = None
            return out
        reason: str | None = None
        if not tokenize(c.quote):
            reason = "no_quote"
        else:
            found = self._find_quote(c.quote, cited)
            if found is None:
                reason = "quote_not_found"
            else:
                if found != cited:
                    out.reason = "chunk_corrected"
                out.chunk_index = found
                if c.verdict == "supported":
                    reason = self._context.missing(c.claim)
        if reason is not None:
            out.verdict = "not_in_context"
            out.verified = False
            out.reason = reason
        return out

    def fact(self, f: FactOut) -> CheckedFact:
        """Check one reference fact's chunk and its ``stated`` verdict."""
        out = CheckedFact(f.fact, f.answer, f.answer, self._index(f.chunk), True)
        reasons: list[str] = []
        if f.chunk is not None and out.chunk_index is None:
            reasons.append("bad_chunk")
        elif out.chunk_index is not None:
            i = out.chunk_index
            evidence = self._per_chunk.get(i)
            if evidence is None:
                evidence = self._per_chunk[i] = Evidence([self.inp.chunks[i]])
            missing = evidence.missing(f.fact)
            if missing is not None:
                out.chunk_index = None
                reasons.append(missing)
        if f.answer == "stated":
            if self._answer is None:
                self._answer = Evidence([self.inp.answer])
            missing = self._answer.missing(f.fact)
            if missing is not None:
                out.answer = "missing"
                reasons.append(missing.replace("in_context", "in_answer"))
        if reasons:
            out.verified = False
            out.reason = ",".join(reasons)
        return out


def verify(
    inp: JudgeInput, claims: Sequence[ClaimOut], facts: Sequence[FactOut] | None
) -> tuple[list[CheckedClaim], list[CheckedFact] | None]:
    """Check every claim and fact of a reply against ``inp``."""
    verifier = Verifier(inp)
    checked = [verifier.claim(c) for c in claims]
    checked_facts = None if facts is None else [verifier.fact(f) for f in facts]
    return checked, checked_facts
