"""Canaries: the shipped set, expectations, injection pacing, outcomes and metrics."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from sidecar.errors import ConfigError
from sidecar.scorers.judge import (
    CANARY_APP,
    Canary,
    CanaryMetrics,
    CanaryRunner,
    CanarySettings,
    is_canary,
    load_canaries,
)
from sidecar.stages import Result


def test_shipped_set_covers_every_kind() -> None:
    name, canaries = load_canaries()
    assert name == "default" and 15 <= len(canaries) <= 30
    kinds = {c.kind for c in canaries}
    assert kinds == {"faithful", "hallucination", "irrelevant_answer", "irrelevant_context"}
    for c in canaries:
        assert c.expect and c.chunks and c.query


def test_expectations() -> None:
    canary = Canary.model_validate(
        {
            "id": "x",
            "kind": "faithful",
            "query": "q",
            "answer": "a",
            "chunks": ["c"],
            "expect": {"faithfulness": {"min": 0.8}, "answer_relevance": {"max": 0.4}},
        }
    )
    assert canary.failures({"faithfulness": 0.8, "answer_relevance": 0.0}) == []
    missing = canary.failures({"answer_relevance": 1.0})
    assert [f["metric"] for f in missing] == ["faithfulness", "answer_relevance"]
    assert missing[0] == {"metric": "faithfulness", "min": 0.8, "max": None, "got": None}


def test_bad_canary_files_are_config_errors(tmp_path: Path) -> None:
    bad = tmp_path / "mine.jsonl"
    bad.write_text('{"id": "a", "kind": "faithful", "query": "q", "answer": "a", "chunks": []}\n')
    with pytest.raises(ConfigError, match=r"mine, line 1: expect"):
        load_canaries(bad)
    bad.write_text(
        '{"id": "a", "kind": "faithful", "query": "q", "answer": "", "chunks": [],'
        ' "expect": {"faithfulness": {}}}\n'
    )
    with pytest.raises(ConfigError, match="give min, max or both"):
        load_canaries(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_canaries(tmp_path / "absent.jsonl")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def runner(
    registry: CollectorRegistry | None = None, clock: Clock | None = None, **over: object
) -> tuple[CanaryRunner, CollectorRegistry]:
    registry = registry or CollectorRegistry()
    settings = CanarySettings.model_validate({"every_s": 60, "window": 3, **over})
    return CanaryRunner(
        "cheap", settings, CanaryMetrics(registry), clock=clock or Clock()
    ), registry


def get(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_paced_by_time_and_by_count() -> None:
    clock = Clock()
    by_time, _ = runner(clock=clock)
    assert not by_time.due(), "the first canary comes one interval after start"
    clock.now += 60
    assert by_time.due()
    offered: list[Result] = []
    assert by_time.maybe_inject(lambda r: offered.append(r) is None)
    assert not by_time.due() and len(offered) == 1
    by_count, _ = runner(clock=clock, every_s=None, every_judged=3)
    for _ in range(2):
        by_count.admitted()
    assert not by_count.due()
    by_count.admitted()
    assert by_count.due()


def test_canary_results_are_marked_and_never_look_real() -> None:
    r, _ = runner()
    result = r.result_for(r.canaries[0])
    assert is_canary(result.trace.trace_id)
    assert result.trace.trace_id.startswith(f"rag-sidecar-canary:cheap:{r.canaries[0].id}:")
    assert result.event.labels.app == CANARY_APP == result.trace.app
    assert result.event.sampled.reasons == ["canary"]
    assert result.trace.query == r.canaries[0].query
    assert r.result_for(r.canaries[0]).trace.trace_id != result.trace.trace_id


def test_outcomes_accuracy_and_flags() -> None:
    clock = Clock()
    r, registry = runner(clock=clock)
    queued: list[Result] = []

    def inject() -> Result:
        clock.now += 60
        assert r.maybe_inject(lambda res: queued.append(res) is None)
        return queued[-1]

    def judge(res: Result, ok: bool) -> list[str]:
        canary = next(c for c in r.canaries if res.trace.metadata["canary"] == c.id)
        good = {m: (b.min if b.min is not None else b.max) for m, b in canary.expect.items()}
        scores = good if ok else {}
        res.event.detail = {}
        return r.judged(res.event, scores)

    assert judge(inject(), True) == []
    assert get(registry, "rag_sidecar_judge_canary_accuracy", judge="cheap") == 1.0
    failed = inject()
    assert judge(failed, False) == ["judge_canary_failed"]
    assert failed.event.detail is not None and failed.event.detail["canary"]["passed"] is False
    assert get(registry, "rag_sidecar_judge_canary_accuracy", judge="cheap") == 0.5
    r.failed(inject().trace.trace_id)
    assert get(registry, "rag_sidecar_judge_canary_total", judge="cheap", outcome="error") == 1
    judge(inject(), True)
    judge(inject(), True)
    # window 3: pass, fail, pass, pass → the last three: fail, pass, pass
    assert get(registry, "rag_sidecar_judge_canary_accuracy", judge="cheap") == pytest.approx(2 / 3)
    assert get(registry, "rag_sidecar_judge_canary_total", judge="cheap", outcome="pass") == 3
    assert get(registry, "rag_sidecar_judge_canary_total", judge="cheap", outcome="fail") == 1
    assert r.judged(failed.event, {}) == [], "an unknown or repeated canary is ignored"


def test_a_refused_canary_is_skipped_and_the_slot_spent() -> None:
    clock = Clock()
    r, registry = runner(clock=clock)
    clock.now += 60
    assert not r.maybe_inject(lambda _: False)
    assert get(registry, "rag_sidecar_judge_canary_total", judge="cheap", outcome="skipped") == 1
    assert not r.due()
