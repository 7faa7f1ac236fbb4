"""The suite: registry completeness, versions, settings, the shared cache."""

from __future__ import annotations

import hashlib
import math
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from sidecar.scorers.base import HeuristicScorer, Scores
from sidecar.scorers.heuristics import (
    FAMILIES,
    FAMILY_CLASSES,
    FLAGS,
    HEURISTICS_VERSION,
    METRICS,
    HeuristicsSettings,
    HeuristicSuite,
)
from sidecar.scorers.heuristics.registry import FLAG_FAMILIES
from sidecar.trace import Chunk, Trace

KB = [
    "To reset your password, open Settings, choose Security and click Reset password.",
    "Billing happens monthly on the first day of the month.",
]


def _trace(
    answer: str, chunks: list[Any] | None = None, query: str = "How do I reset it?"
) -> Trace:
    items = KB if chunks is None else chunks
    return Trace(
        trace_id="t",
        query=query,
        answer=answer,
        chunks=[c if isinstance(c, Chunk) else Chunk(text=c, score=0.5) for c in items],
    )


VARIED = [
    _trace("Open Settings, choose Security and click Reset password [1]."),
    _trace("Call our hotline at +1 202-555-0143 or mail help@example.com [7]."),
    _trace("Pay with 4111 1111 1111 1111 [0]."),
    _trace("I'm sorry, but I cannot find that in the provided documents."),
    _trace("   "),
    _trace("Open Settings.", chunks=[]),
    _trace("Open Settings.", chunks=["  ", "\n"]),
    _trace("Open Settings.", chunks=[Chunk(text="a"), Chunk(text="A ")]),
    _trace("Open Settings.", chunks=[Chunk(text="x", score=0.1), Chunk(text="y", score=0.05)]),
    _trace("Öffnen Sie die Einstellungen.", query="Wie kann ich das Passwort zurücksetzen?"),
    _trace("Open the Settings page and do it.", query="Wie kann ich das Passwort zurücksetzen?"),
    _trace("word " * 400, query="Why?"),
]


def test_every_emitted_name_is_registered() -> None:
    suite = HeuristicSuite()
    emitted_values: set[str] = set()
    emitted_flags: set[str] = set()
    for trace in VARIED:
        out = suite.score(trace)
        emitted_values |= out.values.keys()
        emitted_flags |= set(out.flags)
        for name, value in out.values.items():
            assert isinstance(value, float) and math.isfinite(value), name
            if METRICS[name].kind == "ratio":
                assert 0.0 <= value <= 1.0, (name, value)
            elif METRICS[name].kind == "count":
                assert value >= 0 and value == int(value), (name, value)
    assert emitted_values <= METRICS.keys()
    assert emitted_flags <= FLAGS.keys()
    # the varied traces exercise every flag and every metric
    assert emitted_flags == FLAGS.keys()
    assert emitted_values == METRICS.keys()


def test_registry_is_consistent() -> None:
    assert list(FAMILY_CLASSES) == list(FAMILIES)
    assert FLAG_FAMILIES.keys() == FLAGS.keys()
    assert set(FLAG_FAMILIES.values()) <= FAMILIES.keys()
    assert all(spec.family in FAMILIES and spec.name == name for name, spec in METRICS.items())
    assert not METRICS.keys() & FLAGS.keys()


def test_families_satisfy_the_protocol() -> None:
    settings = HeuristicsSettings()
    for name, cls in FAMILY_CLASSES.items():
        scorer: HeuristicScorer = cls(settings)
        assert scorer.name == name
        out = Scores()
        scorer.score(VARIED[0], out)


def test_standalone_families_match_the_suite() -> None:
    suite = HeuristicSuite()
    for trace in VARIED:
        out = Scores()
        for cls in FAMILY_CLASSES.values():
            cls().score(trace, out)
        assert out == suite.score(trace)


def test_version_tracks_settings_that_change_scores() -> None:
    base = HeuristicSuite().version
    assert base.startswith(f"heuristics-{HEURISTICS_VERSION}+")
    assert len(base.rsplit("+", 1)[1]) == 8
    assert HeuristicSuite(HeuristicsSettings()).version == base
    assert HeuristicSuite(HeuristicsSettings(low_groundedness=0.6)).version != base
    assert HeuristicSuite(HeuristicsSettings(concise_max_tokens=100)).version != base
    assert HeuristicSuite(HeuristicsSettings(enabled_families=["pii"])).version != base
    # neither the cache size nor the order of the family list changes scores
    assert HeuristicSuite(HeuristicsSettings(token_cache_size=10)).version == base
    assert HeuristicSuite(HeuristicsSettings(enabled_families=list(FAMILIES))).version == base
    a = HeuristicsSettings(enabled_families=["pii", "refusal"])
    b = HeuristicsSettings(enabled_families=["refusal", "pii", "pii"])
    assert HeuristicSuite(a).version == HeuristicSuite(b).version


def test_enabled_families() -> None:
    suite = HeuristicSuite(HeuristicsSettings(enabled_families=["pii", "length"]))
    assert [f.name for f in suite.families] == ["length", "pii"]
    out = suite.score(VARIED[1])
    assert set(out.values) == {"answer_length", "conciseness"}
    assert out.flags == ["pii_email", "pii_phone"]
    assert HeuristicSuite(HeuristicsSettings(enabled_families=[])).score(VARIED[1]) == Scores()


def test_settings_validation() -> None:
    with pytest.raises(ValidationError, match="unknown heuristic families"):
        HeuristicsSettings(enabled_families=["retrieval", "sentiment"])
    with pytest.raises(ValidationError):
        HeuristicsSettings.model_validate({"low_groundednes": 0.5})  # typo: extra forbidden
    with pytest.raises(ValidationError):
        HeuristicsSettings(low_groundedness=1.5)
    with pytest.raises(ValidationError):
        HeuristicsSettings(token_cache_size=-1)


def test_chunks_are_tokenised_once_across_traces() -> None:
    suite = HeuristicSuite()
    suite.score(_trace("Open Settings."))
    assert (suite.token_cache.hits, suite.token_cache.misses) == (0, 2)
    suite.score(_trace("Click Reset password."))
    suite.score(_trace("Billing is monthly."))
    assert (suite.token_cache.hits, suite.token_cache.misses) == (4, 2)
    suite.score(_trace("New chunk.", chunks=["Something else entirely.", KB[0]]))
    assert (suite.token_cache.hits, suite.token_cache.misses) == (5, 3)


# Traces whose scores changed meaning in heuristics-2 (CJK and Brahmic tokens, NFKC,
# contractions split without eating "won"/"d", citations in code, refusal phrasings, card
# prefixes, 1-800 numbers), beside VARIED.
PROBES = [
    *VARIED,
    _trace("法国的首都是巴黎。", chunks=["巴黎是法国的首都。"], query="法国的首都是哪里？"),
    _trace("The ﬁnance fee isn't five dollars.", chunks=["The finance fee is five dollars."]),
    _trace("Run:\n```\nx = [0]\n```\nsee [2]."),
    _trace("I can't help but recommend Settings."),
    _trace("I don't have access to that information."),
    _trace("Order 7834 5612 9023 4457 ships; call 1-800-555-0199."),
    _trace("भारत की राजधानी नई दिल्ली है।", chunks=["नई दिल्ली भारत की राजधानी है।"]),
    _trace("Argentina won the cup; take vitamin D.", chunks=["Argentina lost the final."]),
    _trace("Open Settings [doc1] and Security[^2]."),
]
SCORES_DIGEST: dict[str, str] = {
    "2": "118fb21053405710",  # heuristics-2 is first released with this digest
}
"""HEURISTICS_VERSION → digest of the suite's output on PROBES. A code change that moves
it must bump HEURISTICS_VERSION (events are re-identified) and add the new digest."""


def test_a_change_of_scores_bumps_the_version() -> None:
    suite = HeuristicSuite()
    outputs = [[sorted(o.values.items()), o.flags] for o in map(suite.score, PROBES)]
    digest = hashlib.sha256(orjson.dumps(outputs)).hexdigest()[:16]
    assert HEURISTICS_VERSION in SCORES_DIGEST, "new version: record its digest here"
    assert SCORES_DIGEST[HEURISTICS_VERSION] == digest, (
        "scores changed: bump HEURISTICS_VERSION and record the new digest"
    )
