"""The heuristic suite: cheap, model-free scores computed for every trace.

:class:`HeuristicSuite` runs the enabled families (see :mod:`.registry`) over a
trace. The query and answer are tokenised once per trace and chunk texts once
per process (:class:`~sidecar.scorers.text.TokenCache`); every family reads them
from a shared :class:`~.prepared.PreparedTrace`.
"""

from __future__ import annotations

import hashlib
from typing import Final

import orjson

from ...trace import Trace
from ..base import Scores
from ..text import TokenCache
from .citations import CitationScorer
from .context import ContextScorer
from .language import LanguageScorer, detect_language
from .length import LengthScorer
from .overlap import OverlapScorer
from .pii import PII_KINDS, PiiScorer, find_pii, redact_pii
from .prepared import FamilyScorer, PreparedTrace
from .refusal import RefusalScorer, is_refusal
from .registry import FAMILIES, FLAGS, METRICS, MetricSpec
from .retrieval import RetrievalScorer
from .settings import HeuristicsSettings

__all__ = [
    "FAMILIES",
    "FAMILY_CLASSES",
    "FLAGS",
    "HEURISTICS_VERSION",
    "METRICS",
    "PII_KINDS",
    "FamilyScorer",
    "HeuristicSuite",
    "HeuristicsSettings",
    "MetricSpec",
    "PreparedTrace",
    "detect_language",
    "enabled_families",
    "find_pii",
    "is_refusal",
    "redact_pii",
    "settings_fingerprint",
]

HEURISTICS_VERSION: Final = "2"
"""Bump whenever a code change alters any heuristic value or flag."""

FAMILY_CLASSES: Final[dict[str, type[FamilyScorer]]] = {
    cls.name: cls
    for cls in (
        RetrievalScorer,
        ContextScorer,
        OverlapScorer,
        RefusalScorer,
        LengthScorer,
        CitationScorer,
        PiiScorer,
        LanguageScorer,
    )
}
"""Family name → class, in the registry's order."""


def enabled_families(settings: HeuristicsSettings) -> list[str]:
    """The names of the families ``settings`` enables, in run order."""
    if settings.enabled_families is None:
        return list(FAMILIES)
    return list(settings.enabled_families)


def settings_fingerprint(settings: HeuristicsSettings) -> str:
    """8 hex digits identifying the score-relevant settings."""
    data = settings.model_dump(exclude={"token_cache_size"})
    data["enabled_families"] = enabled_families(settings)
    blob = orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(blob).hexdigest()[:8]


class HeuristicSuite:
    """Runs every enabled heuristic family over a trace.

    ``version`` is ``heuristics-<HEURISTICS_VERSION>+<settings fingerprint>``: it
    goes into event ids, so settings that change scores change it.
    """

    def __init__(self, settings: HeuristicsSettings | None = None) -> None:
        self.settings = settings if settings is not None else HeuristicsSettings()
        self.token_cache = TokenCache(self.settings.token_cache_size)
        self.families: tuple[FamilyScorer, ...] = tuple(
            FAMILY_CLASSES[name](self.settings, self.token_cache)
            for name in enabled_families(self.settings)
        )
        self._score_fns = tuple(family.score_prepared for family in self.families)
        self.version = f"heuristics-{HEURISTICS_VERSION}+{settings_fingerprint(self.settings)}"

    def score(self, trace: Trace) -> Scores:
        """All enabled families' values and flags for ``trace``."""
        out = Scores()
        prepared = PreparedTrace(trace, self.token_cache)
        for score in self._score_fns:
            score(prepared, out)
        return out
