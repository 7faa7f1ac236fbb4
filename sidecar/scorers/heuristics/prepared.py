"""The per-trace analysis shared by all families, and the families' base class.

The suite builds one :class:`PreparedTrace` per trace; each family reads the
query/answer tokens and chunk analyses from it, so the text is tokenised once
whatever the number of families.
"""

from __future__ import annotations

from ...trace import Trace
from ..base import Scores
from ..text import CachedText, TextTokens, TokenCache
from .settings import HeuristicsSettings


class PreparedTrace:
    """A trace plus the token sets every family reads.

    Built eagerly (plain attributes are cheaper to read than lazy properties,
    and the default suite needs all of them).
    """

    __slots__ = ("answer", "answer_blank", "chunks", "cited", "query", "refusal", "trace")

    def __init__(self, trace: Trace, cache: TokenCache) -> None:
        self.trace = trace
        self.query: TextTokens = cache.analyse(trace.query)
        """The query's tokens."""
        answer = trace.answer
        self.answer_blank: bool = not answer or answer.isspace()
        """True when the answer is empty or whitespace only."""
        self.answer: TextTokens = cache.analyse(answer)
        """The answer's tokens."""
        self.chunks: list[CachedText] = cache.lookup_all([chunk.text for chunk in trace.chunks])
        """Per chunk, in rank order: content tokens, fingerprint, blankness (cached)."""
        self.refusal: bool | None = None
        """Whether the answer is a refusal; set by the refusal helpers on first use."""
        self.cited: set[int] | None = None
        """The chunk indices the answer cites; set by the citation helpers on first use."""


class FamilyScorer:
    """Base class of the heuristic families.

    Subclasses set ``name`` and implement :meth:`score_prepared`. :meth:`score`
    satisfies :class:`~sidecar.scorers.base.HeuristicScorer` for standalone use;
    the suite calls :meth:`score_prepared` with the shared per-trace analysis.
    """

    name: str = ""

    def __init__(
        self, settings: HeuristicsSettings | None = None, cache: TokenCache | None = None
    ) -> None:
        self.settings = settings if settings is not None else HeuristicsSettings()
        self.cache = cache if cache is not None else TokenCache(self.settings.token_cache_size)

    def score(self, trace: Trace, out: Scores) -> None:
        """Add this family's values and flags for ``trace`` to ``out``."""
        self.score_prepared(PreparedTrace(trace, self.cache), out)

    def score_prepared(self, p: PreparedTrace, out: Scores) -> None:
        """Add this family's values and flags, reading the shared analysis ``p``."""
        raise NotImplementedError
