from __future__ import annotations

from sidecar.sampling import Sampler, SamplingSettings, hash_unit
from sidecar.scorers.base import Scores
from sidecar.trace import trace_from_object
from tests.conftest import make_trace


def test_hash_unit_is_deterministic_and_uniform() -> None:
    values = [hash_unit(f"tr-{i}") for i in range(20_000)]
    assert values == [hash_unit(f"tr-{i}") for i in range(20_000)]
    assert all(0.0 <= v < 1.0 for v in values)
    share = sum(v < 0.1 for v in values) / len(values)
    assert 0.09 < share < 0.11
    assert hash_unit("tr-1", "a") != hash_unit("tr-1", "b")


def test_rate_sampling_matches_rate() -> None:
    sampler = Sampler(SamplingSettings(rate=0.2, priority_flags=[], low_retrieval_score=None))
    picked = sum(
        sampler.decide(trace_from_object(make_trace(trace_id=f"x{i}")), Scores()).selected
        for i in range(5000)
    )
    assert 900 < picked < 1100


def test_priority_rules_and_reasons() -> None:
    sampler = Sampler(SamplingSettings(rate=0.0))
    t = trace_from_object(make_trace(feedback={"thumbs": "down"}))
    scores = Scores({"retrieval_top_score": 0.1}, ["low_groundedness", "refusal"])
    d = sampler.decide(t, scores)
    assert d.selected
    assert d.reasons == ["thumbs_down", "low_retrieval_score", "flag:low_groundedness"]
    quiet = sampler.decide(trace_from_object(make_trace()), Scores({"retrieval_top_score": 0.9}))
    assert not quiet.selected and quiet.reasons == []


def test_zero_rate_and_full_rate() -> None:
    t = trace_from_object(make_trace())
    base = {"priority_flags": [], "low_retrieval_score": None, "thumbs_down": False}
    assert not Sampler(SamplingSettings(rate=0.0, **base)).decide(t, Scores()).selected
    assert Sampler(SamplingSettings(rate=1.0, **base)).decide(t, Scores()).reasons == ["rate"]
