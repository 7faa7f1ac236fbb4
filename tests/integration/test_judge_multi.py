"""Several judges, canaries and agreement against the fake OpenAI-compatible judge."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from sidecar.app import build_pipeline
from sidecar.config import load_settings
from sidecar.scorers.judge import (
    CANARY_APP,
    JudgeRouter,
    JudgeSettings,
    JudgeStage,
    load_canaries,
)
from sidecar.scorers.judge.router import in_share
from sidecar.stages import Result
from tests.conftest import make_trace
from tests.support import fake_judge
from tests.support.fake_judge import FakeJudge, Reply, sampled_result

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "traces.jsonl"
N_CANARIES = len(load_canaries()[1])
FAST = {"rate_per_minute": 100_000, "queue_size": 200, "max_retries": 0}
NO_CANARY = {"canary": {"enabled": False}}


class Clock:
    """A hand-driven monotonic clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Sink:
    """Collects what the router writes."""

    def __init__(self) -> None:
        self.results: list[Result] = []

    async def __call__(self, results: list[Result]) -> None:
        self.results.extend(results)


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    got = registry.get_sample_value(name, labels)
    assert got is not None, f"{name}{labels} not exported"
    return got


async def until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def router(*judges: dict[str, Any]) -> tuple[JudgeRouter, CollectorRegistry]:
    registry = CollectorRegistry()
    settings = [JudgeSettings.model_validate({**FAST, **j}) for j in judges]
    return JudgeRouter.from_settings(settings, registry), registry


def canary_outcomes(registry: CollectorRegistry, judge: str = "default") -> dict[str, float]:
    return {
        o: value(registry, "rag_sidecar_judge_canary_total", judge=judge, outcome=o)
        for o in ("pass", "fail", "error", "skipped")
    }


@pytest.fixture
async def fake() -> AsyncIterator[FakeJudge]:
    async with FakeJudge() as server:
        yield server


async def canary_run(
    fake: FakeJudge, rounds: int = N_CANARIES, **judge: Any
) -> tuple[CollectorRegistry, Sink]:
    """Inject ``rounds`` canaries (one per simulated minute) and wait for their outcomes."""
    clock, registry, sink = Clock(), CollectorRegistry(), Sink()
    settings = JudgeSettings.model_validate(
        {**FAST, "url": fake.url, "canary": {"every_s": 60, "window": N_CANARIES}, **judge}
    )
    r = JudgeRouter([JudgeStage(settings, registry)], registry, clock=clock)
    await r.start(sink)
    for _ in range(rounds):
        clock.now += 60
        r.inject_due()
    await until(lambda: sum(canary_outcomes(registry).values()) >= rounds)
    await r.aclose()
    return registry, sink


async def test_shipped_canaries_pass_with_the_toy_judge(fake: FakeJudge) -> None:
    registry, sink = await canary_run(fake)
    assert canary_outcomes(registry) == {"pass": N_CANARIES, "fail": 0, "error": 0, "skipped": 0}
    assert value(registry, "rag_sidecar_judge_canary_accuracy", judge="default") == 1.0
    assert len(fake.requests) == N_CANARIES
    events = [r.event for r in sink.results]
    assert {e.detail["canary"]["id"] for e in events} == {c.id for c in load_canaries()[1]}
    for e in events:
        assert e.trace_id.startswith("rag-sidecar-canary:default:")
        assert e.labels.app == CANARY_APP and e.detail["sample_reasons"] == ["canary"]
        assert "judge_canary_failed" not in e.flags


async def test_a_second_round_reaches_the_model_again(fake: FakeJudge) -> None:
    registry, _ = await canary_run(fake, rounds=2 * N_CANARIES)
    assert canary_outcomes(registry)["pass"] == 2 * N_CANARIES
    assert len(fake.requests) == 2 * N_CANARIES, "canaries bypass the cache"


def inverted_verdict(system: str, user: str) -> dict[str, Any]:
    """The toy judge, wrong on purpose: nothing supported, relevance and grades flipped."""
    doc = TOY(system, user)
    for claim in doc["claims"]:
        claim.update(verdict="not_in_context", chunk=None, quote="")
    doc["answer_relevance"] = 3 - doc["answer_relevance"]
    doc["chunk_relevance"] = [2 - g for g in doc["chunk_relevance"]]
    doc["sufficient"] = not doc["sufficient"]
    return doc


TOY = fake_judge.toy_verdict


async def test_canaries_fail_when_the_judge_is_wrong(
    fake: FakeJudge, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fake_judge, "toy_verdict", inverted_verdict)
    registry, sink = await canary_run(fake)
    outcomes = canary_outcomes(registry)
    kinds = {c.id: c.kind for c in load_canaries()[1]}
    failed = {
        e.detail["canary"]["id"]
        for r in sink.results
        if "judge_canary_failed" in (e := r.event).flags
    }
    # hallucination canaries still pass: code verification never lets "not_in_context" pass
    assert failed == {i for i, k in kinds.items() if k != "hallucination"}
    assert outcomes["fail"] == len(failed) and outcomes["pass"] == N_CANARIES - len(failed)
    accuracy = value(registry, "rag_sidecar_judge_canary_accuracy", judge="default")
    assert accuracy == pytest.approx(outcomes["pass"] / N_CANARIES)
    one = next(r.event for r in sink.results if r.event.detail["canary"]["id"] in failed)
    assert one.detail["canary"]["passed"] is False and one.detail["canary"]["failures"]


async def test_canary_errors_and_skips_are_counted() -> None:
    async with FakeJudge(default=Reply.error(500)) as fake:
        # the bucket holds 2: two canaries admitted (and fail), two refused by the budget
        registry, sink = await canary_run(fake, rounds=4, rate_per_minute=2)
    assert canary_outcomes(registry) == {"pass": 0, "fail": 0, "error": 2, "skipped": 2}
    assert value(registry, "rag_sidecar_judge_skipped_total", judge="default", reason="budget") == 2
    assert not sink.results


# --------------------------------------------------------------------------- several judges

UNSUPPORTED = Reply.json(
    {
        "claims": [{"claim": "x", "verdict": "not_in_context", "chunk": None, "quote": ""}],
        "answer_relevance": 0,
        "chunk_relevance": [0, 0],
        "sufficient": False,
    }
)


FAITHFUL = "To reset your password open Settings, choose Security and click Reset password."


def trace(**over: Any) -> dict[str, Any]:
    """A trace the toy judge finds faithful (faithfulness 1.0) unless ``answer`` says otherwise."""
    return make_trace(**{"answer": FAITHFUL, **over})


def rows(n: int, **over: Any) -> list[dict[str, Any]]:
    return [trace(trace_id=f"t-{i}", app="support-bot", **over) for i in range(n)]


async def test_two_judges_disagree_and_are_flagged() -> None:
    async with FakeJudge() as cheap_srv, FakeJudge(default=UNSUPPORTED) as strong_srv:
        registry = CollectorRegistry()
        r = JudgeRouter.from_settings(
            [
                JudgeSettings.model_validate(
                    {**FAST, **NO_CANARY, "name": "cheap", "url": cheap_srv.url}
                ),
                JudgeSettings.model_validate(
                    {**FAST, **NO_CANARY, "name": "strong", "url": strong_srv.url, "role": "shadow"}
                ),
            ],
            registry,
        )
        sink = Sink()
        await r.start(sink)
        for row in rows(6):
            assert r.offer(sampled_result(row))
        await until(lambda: len(sink.results) == 12)
        await r.aclose()
    by_trace: dict[str, list[Any]] = {}
    for res in sink.results:
        by_trace.setdefault(res.trace.trace_id, []).append(res.event)
    for events in by_trace.values():
        flagged = [e for e in events if "judge_disagreement" in e.flags]
        assert len(flagged) == 1, "the event completing the pair is flagged"
        assert flagged[0].detail["disagreement"]["cheap/strong"]["faithfulness"] == [1.0, 0.0]
        primary = next(e for e in events if e.detail["role"] == "primary")
        shadow = next(e for e in events if e.detail["role"] == "shadow")
        assert primary.scores["faithfulness"] == 1.0
        assert shadow.scores == {} and shadow.detail["scores"]["faithfulness"] == 0.0
        # Same model name and prompt (both "judge"), yet two events: consumers dedupe on event_id.
        assert primary.event_id != shadow.event_id
    labels = {"app": "support-bot", "metric": "faithfulness", "judges": "cheap/strong"}
    get = lambda stat: value(registry, "rag_sidecar_judge_agreement", stat=stat, **labels)  # noqa: E731
    assert get("mean_abs_diff") == 1.0 and get("share_close") == 0.0 and get("samples") == 6
    assert get("kappa") == 0.0  # cheap always passes, strong always fails: pe = 0, po = 0


async def test_shadow_share_is_deterministic(fake: FakeJudge) -> None:
    r, _ = router(
        {**NO_CANARY, "name": "cheap", "url": fake.url},
        {**NO_CANARY, "name": "strong", "url": fake.url, "role": "shadow", "share": 0.5},
    )
    sink = Sink()
    await r.start(sink)
    for row in rows(40):
        r.offer(sampled_result(row))
    await r.aclose()  # lets queued work finish
    shadowed = {res.trace.trace_id for res in sink.results if res.event.detail["role"] == "shadow"}
    assert 8 < len(shadowed) < 32
    assert shadowed == {f"t-{i}" for i in range(40) if in_share("strong", f"t-{i}", 0.5)}


async def test_escalation_only_where_primary_and_heuristics_disagree() -> None:
    async with FakeJudge() as cheap_srv, FakeJudge() as strong_srv:
        r, _ = router(
            {**NO_CANARY, "name": "cheap", "url": cheap_srv.url},
            {**NO_CANARY, "name": "strong", "url": strong_srv.url, "role": "escalation"},
        )
        sink = Sink()
        await r.start(sink)
        low, high = (
            sampled_result(trace(trace_id="low")),
            sampled_result(trace(trace_id="high")),
        )
        low.event.scores["groundedness_lexical"] = 0.1  # the toy judge says faithful: 1.0
        high.event.scores["groundedness_lexical"] = 0.9
        r.offer(low)
        r.offer(high)
        await until(lambda: len(sink.results) == 3)
        await r.aclose()
    assert len(strong_srv.requests) == 1
    esc = next(res.event for res in sink.results if res.event.detail["role"] == "escalation")
    assert esc.trace_id == "low"
    assert esc.detail["escalation"] == {
        "from": "cheap",
        "reasons": ["faithful_but_ungrounded"],
        "faithfulness": 1.0,
        "groundedness_lexical": 0.1,
    }
    assert esc.detail["sample_reasons"] == ["rate"]


async def test_feedback_auroc_and_disagreement(fake: FakeJudge) -> None:
    r, registry = router({**NO_CANARY, "url": fake.url})
    sink = Sink()
    await r.start(sink)
    good = trace(feedback={"thumbs": "up"})
    bad = trace(answer="The moon is made of green cheese.", feedback={"thumbs": "down"})
    odd = trace(feedback={"thumbs": "down"})  # faithful, yet thumbs down
    for i, row in enumerate([good, good, bad, odd]):
        r.offer(sampled_result({**row, "trace_id": f"t-{i}"}))
    await until(lambda: len(sink.results) == 4)
    await r.aclose()
    flagged = [
        res.trace.trace_id
        for res in sink.results
        if "judge_feedback_disagreement" in res.event.flags
    ]
    assert flagged == ["t-3"]
    # faithfulness (1, 1, 0, 1) vs up (T, T, F, F): pairs up>down: 2×(1>0)=2, ties 2×½ → 3/4
    assert (
        value(registry, "rag_sidecar_judge_feedback_auroc", app="support-bot", judge="default")
        == 0.75
    )
    assert (
        value(registry, "rag_sidecar_judge_feedback_samples", app="support-bot", judge="default")
        == 4
    )


# ------------------------------------------------------------------------------- pipeline


def real_scores(registry: CollectorRegistry) -> dict[tuple[Any, ...], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in registry.collect()
        if fam.name == "rag_sidecar_score"
        for s in fam.samples
        if s.labels.get("app") != CANARY_APP
    }


async def run_pipeline(tmp_path: Path, judge: Any) -> tuple[list[Any], CollectorRegistry]:
    events = tmp_path / "events.jsonl"
    settings = load_settings(
        sources=[str(EXAMPLES)],
        events=f"file:{events}",
        dead_letter=f"file:{tmp_path / 'dlq.jsonl'}",
        sampling={"rate": 0.1},
        judge=judge,
    )
    registry = CollectorRegistry()
    pipe = build_pipeline(settings, registry)
    await pipe.start()
    assert await pipe.drained()
    await pipe.aclose()
    return [orjson.loads(x) for x in events.read_text().splitlines()], registry


async def test_canaries_and_shadows_leave_real_app_scores_alone(tmp_path: Path) -> None:
    async with FakeJudge() as fake:
        _, plain = await run_pipeline(tmp_path / "a", {**FAST, **NO_CANARY, "url": fake.url})
        docs, multi = await run_pipeline(
            tmp_path / "b",
            [
                {**FAST, "name": "cheap", "url": fake.url, "canary": {"every_judged": 3}},
                {**FAST, **NO_CANARY, "name": "strong", "url": fake.url, "role": "shadow"},
            ],
        )
    canaries = [d for d in docs if d["labels"]["app"] == CANARY_APP]
    assert canaries and all(d["trace_id"].startswith("rag-sidecar-canary:") for d in canaries)
    assert real_scores(multi) == real_scores(plain)
    assert any(
        s.labels.get("app") == CANARY_APP
        for fam in multi.collect()
        if fam.name == "rag_sidecar_score"
        for s in fam.samples
    )
    assert value(multi, "rag_sidecar_judge_canary_accuracy", judge="cheap") == 1.0
    mad = [
        s.value
        for fam in multi.collect()
        if fam.name == "rag_sidecar_judge_agreement"
        for s in fam.samples
        if s.labels["stat"] == "mean_abs_diff" and s.labels["judges"] == "cheap/strong"
    ]
    assert mad and all(v == 0.0 or math.isnan(v) for v in mad)
