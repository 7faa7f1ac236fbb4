from __future__ import annotations

import asyncio
import subprocess

from prometheus_client import CollectorRegistry, generate_latest

from sidecar.events import FeedbackView, Labels, Sampling, ScoredEvent
from sidecar.sinks.prometheus import PrometheusSink
from sidecar.stages import Result
from sidecar.trace import trace_from_object
from tests.conftest import make_trace, require_tool


def result(app: str | None, scores: dict[str, float], **kw: object) -> Result:
    ev = ScoredEvent(
        event_id="e",
        trace_id="t",
        type="heuristic",
        timestamp=0.0,
        scored_at=0.0,
        scorer_version="v",
        source="test",
        labels=Labels(app, "m", "v1", None),
        scores=scores,
        flags=list(kw.get("flags", [])),  # type: ignore[call-overload]
        sampled=Sampling(True, ["rate"]),
        feedback=kw.get("feedback"),  # type: ignore[arg-type]
    )
    return Result(trace_from_object(make_trace()), ev)


async def test_scores_flags_feedback_and_label_cap() -> None:
    reg = CollectorRegistry()
    sink = PrometheusSink(reg, max_label_values=2, metric_kinds={"answer_length": "count"})
    await sink.write(
        [
            result(
                "a",
                {"groundedness_lexical": 0.5, "answer_length": 42},
                flags=["refusal"],
                feedback=FeedbackView("down", 2.0),
            ),
            result("b", {"groundedness_lexical": 1.0}),
            result("c", {"groundedness_lexical": 0.25}),  # third app → "other"
            result(None, {"groundedness_lexical": 0.75}),  # missing → "unknown"... but cap is hit
        ]
    )
    g = lambda app: reg.get_sample_value(  # noqa: E731
        "rag_sidecar_score_count",
        {"app": app, "model": "m", "prompt_version": "v1", "metric": "groundedness_lexical"},
    )
    assert g("a") == 1 and g("b") == 1 and g("other") == 1 and g("unknown") == 1
    assert (
        reg.get_sample_value(
            "rag_sidecar_count_sum",
            {"app": "a", "model": "m", "prompt_version": "v1", "metric": "answer_length"},
        )
        == 42
    )
    assert reg.get_sample_value("rag_sidecar_flags_total", {"app": "a", "flag": "refusal"}) == 1
    assert (
        reg.get_sample_value(
            "rag_sidecar_feedback_total",
            {"app": "a", "model": "m", "prompt_version": "v1", "value": "down"},
        )
        == 1
    )
    assert reg.get_sample_value("rag_sidecar_sampled_total", {"reason": "rate"}) == 4
    assert reg.get_sample_value("rag_sidecar_label_overflow_total", {"label": "app"}) == 1


def test_exposition_passes_promtool_check_metrics() -> None:
    promtool = require_tool("promtool")
    reg = CollectorRegistry()
    sink = PrometheusSink(reg)
    batch = [
        result(
            "a", {"groundedness_lexical": 0.5}, flags=["refusal"], feedback=FeedbackView("up", 4.0)
        )
    ]
    asyncio.run(sink.write(batch))
    out = subprocess.run(
        [promtool, "check", "metrics"], input=generate_latest(reg), capture_output=True, timeout=30
    )
    assert out.returncode == 0, out.stdout + out.stderr


async def test_cached_series_still_count_every_overflow() -> None:
    reg = CollectorRegistry()
    sink = PrometheusSink(reg, max_label_values=1)
    for _ in range(2):
        await sink.write([result("a", {"x": 0.5}, flags=["refusal"]), result("b", {"x": 0.5})])
    assert reg.get_sample_value("rag_sidecar_label_overflow_total", {"label": "app"}) == 2
    labels = {"model": "m", "prompt_version": "v1", "metric": "x"}
    assert reg.get_sample_value("rag_sidecar_score_count", {"app": "a", **labels}) == 2
    assert reg.get_sample_value("rag_sidecar_score_count", {"app": "other", **labels}) == 2
    assert reg.get_sample_value("rag_sidecar_flags_total", {"app": "a", "flag": "refusal"}) == 2


def test_a_retired_prompt_version_leaves_and_frees_its_slot() -> None:
    """A long-running sidecar sees prompt versions come and go: one unseen for label_ttl_s
    leaves /metrics and its slot goes to the next version instead of 'other'."""

    class Clock:
        now = 1000.0

        def __call__(self) -> float:
            return self.now

    clock = Clock()
    reg = CollectorRegistry()
    sink = PrometheusSink(reg, max_label_values=2, label_ttl_s=3600, clock=clock)

    def write(pv: str, app: str = "a", **kw: object) -> None:
        r = result(app, {"groundedness_lexical": 0.5}, **kw)
        r.event.labels = Labels(app, "m", pv, None)
        asyncio.run(sink.write([r]))

    def count(pv: str, app: str = "a") -> float | None:
        labels = {"app": app, "model": "m", "prompt_version": pv}
        return reg.get_sample_value(
            "rag_sidecar_score_count", {**labels, "metric": "groundedness_lexical"}
        )

    write("v1", flags=["refusal"], feedback=FeedbackView("down", 2.0))
    write("v2")
    write("v3")  # the cap: folded into 'other'
    assert count("other") == 1
    clock.now += 3000
    write("v2")  # v2 stays in use; v1 is not seen again
    clock.now += 1000  # v1 unseen for 4000 s > ttl, v2 for 1000 s
    write("v2")
    assert count("v1") is None and count("v2") == 3
    fb = {"app": "a", "model": "m", "prompt_version": "v1", "value": "down"}
    assert reg.get_sample_value("rag_sidecar_feedback_total", fb) is None
    # the app is still live: its flag series stays
    assert reg.get_sample_value("rag_sidecar_flags_total", {"app": "a", "flag": "refusal"}) == 1
    write("v4")  # v1's slot is free again
    assert count("v4") == 1
    clock.now += 5000  # everything unseen: app a retires with its flags
    write("v9", app="b")
    assert reg.get_sample_value("rag_sidecar_flags_total", {"app": "a", "flag": "refusal"}) is None
    assert count("v9", app="b") == 1


async def test_a_changed_vote_counts_the_retracted_thumbs() -> None:
    """up, then down on one trace: total counts both votes, retracted the replaced one,
    so net votes per value are total - retracted (and a retired series takes both)."""
    reg = CollectorRegistry()
    clock = [1000.0]
    sink = PrometheusSink(reg, label_ttl_s=60, clock=lambda: clock[0])
    first = result("a", {}, feedback=FeedbackView("up", None))
    changed = result("a", {}, feedback=FeedbackView("down", None))
    changed.event.type = "feedback"
    changed.event.detail = {"supersedes": "e", "retracted": "up"}
    rating_only = result("a", {}, feedback=FeedbackView(None, 4.0))
    rating_only.event.detail = {"retracted": "down"}  # no new thumbs: nothing replaced
    await sink.write([first, changed, rating_only])
    labels = {"app": "a", "model": "m", "prompt_version": "v1"}
    total = lambda v: reg.get_sample_value("rag_sidecar_feedback_total", {**labels, "value": v})  # noqa: E731
    gone = lambda v: reg.get_sample_value(  # noqa: E731
        "rag_sidecar_feedback_retracted_total", {**labels, "value": v}
    )
    assert (total("up"), total("down"), gone("up"), gone("down")) == (1, 1, 1, None)
    assert sink.retire(clock[0] + 1) == 1
    assert gone("up") is None and total("up") is None


def test_judge_scores_of_priority_only_samples_stay_out_of_the_score_histogram() -> None:
    """Thumbs-down and flagged traces are always judged: averaged in with the random sample
    they would drag the judge means down whenever more of them arrive (or the budget admits
    only them). The random sample (reason rate, even with a priority reason too) and
    canaries stay in rag_sidecar_score."""
    reg = CollectorRegistry()
    sink = PrometheusSink(reg)
    cases = [["thumbs_down"], ["rate", "thumbs_down"], ["flag:refusal"], ["canary"], ["rate"]]
    batch = []
    for reasons in cases:
        r = result("a", {"faithfulness": 0.5})
        r.event.type = "judge"
        r.event.detail = {"sample_reasons": reasons}
        batch.append(r)
    asyncio.run(sink.write(batch))
    labels = {"app": "a", "model": "m", "prompt_version": "v1", "metric": "faithfulness"}
    assert reg.get_sample_value("rag_sidecar_score_count", labels) == 3
    assert reg.get_sample_value("rag_sidecar_judge_priority_score_count", labels) == 2
