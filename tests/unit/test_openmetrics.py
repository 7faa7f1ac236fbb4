"""The OpenMetrics backfill sink: exact output, ordering, lateness, caps, bounded memory."""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from sidecar.events import FeedbackView, Labels, Sampling, ScoredEvent
from sidecar.sinks.openmetrics import OpenMetricsBackfillSink
from sidecar.sinks.prometheus import PrometheusSink
from sidecar.stages import Result
from sidecar.trace import trace_from_object
from tests.conftest import make_trace

T0 = 1_800_000_000  # an hour boundary
KINDS = {"answer_length": "count", "retrieval_count": "count"}
TRACE = trace_from_object(make_trace())
SAMPLE = re.compile(r"([a-z_]+)\{(.*)\} (\S+) (\S+)")
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')

Sample = tuple[str, dict[str, str], float, float]


def result(
    t: float,
    app: str | None = "a",
    scores: dict[str, float] | None = None,
    flags: Sequence[str] = (),
    feedback: FeedbackView | None = None,
    reasons: Sequence[str] = (),
    model: str | None = "m",
    retracted: str | None = None,
) -> Result:
    ev = ScoredEvent(
        event_id="e",
        trace_id="t",
        type="heuristic",
        timestamp=t,
        scored_at=t,
        scorer_version="v",
        source="replay",
        labels=Labels(app, model, "v1", None),
        scores=scores or {},
        flags=list(flags),
        sampled=Sampling(bool(reasons), list(reasons)),
        feedback=feedback,
        detail=None if retracted is None else {"retracted": retracted},
    )
    return Result(TRACE, ev)


def parse(text: str) -> list[Sample]:
    """Every sample line as (name, labels, value, timestamp)."""
    out = []
    for line in text.splitlines():
        if not line.startswith("#"):
            m = SAMPLE.fullmatch(line)
            assert m, line
            labels = dict(LABEL.findall(m[2]))
            out.append((m[1], labels, float(m[3]), float(m[4])))
    return out


def check_structure(text: str) -> None:
    """Families and series contiguous, points whole, series never going back in time."""
    assert text.endswith("\n# EOF\n")
    families = [ln.split()[2] for ln in text.splitlines() if ln.startswith("# TYPE")]
    assert len(families) == len(set(families))
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    current = None
    last_ts: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for name, labels, _, ts in parse(text):
        family = re.sub(r"_(bucket|sum|count|total)$", "", name)
        key = (family, tuple(sorted((k, v) for k, v in labels.items() if k != "le")))
        if key != current:
            assert key not in seen, f"series interleaved: {key}"
            seen.add(key)
            current = key
        series = (name, tuple(sorted(labels.items())))
        assert ts > last_ts.get(series, -1), f"time went back or repeated: {series} {ts}"
        last_ts[series] = ts


def entries(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


async def run(tmp_path: Path, batches: Sequence[Sequence[Result]], **kw: object) -> str:
    path = tmp_path / "out.om"
    kw.setdefault("metric_kinds", KINDS)
    sink = OpenMetricsBackfillSink(path, **kw)  # type: ignore[arg-type]
    await sink.start()
    for batch in batches:
        await sink.write(batch)
    await sink.flush()
    sink.complete = True
    await sink.aclose()
    assert entries(tmp_path) == ["out.om"]  # the spill directory is gone
    return path.read_text()


EXPECTED = """\
# TYPE rag_sidecar_score histogram
# HELP rag_sidecar_score Scores per trace.
# TYPE rag_sidecar_count histogram
# HELP rag_sidecar_count Count-valued scores per trace.
# TYPE rag_sidecar_flags counter
# HELP rag_sidecar_flags Heuristic flags raised.
rag_sidecar_flags_total{app="a",flag="pii_email",backfill="r1"} 0 1800000000
rag_sidecar_flags_total{app="a",flag="pii_email",backfill="r1"} 0 1800000060
rag_sidecar_flags_total{app="a",flag="pii_email",backfill="r1"} 1 1800000120
rag_sidecar_flags_total{app="a",flag="refusal",backfill="r1"} 0 1800000000
rag_sidecar_flags_total{app="a",flag="refusal",backfill="r1"} 1 1800000060
rag_sidecar_flags_total{app="a",flag="refusal",backfill="r1"} 2 1800000120
# TYPE rag_sidecar_feedback counter
# HELP rag_sidecar_feedback User feedback on traces.
rag_sidecar_feedback_total{app="a",model="m",prompt_version="v1",value="down",backfill="r1"} 0 1800000000
rag_sidecar_feedback_total{app="a",model="m",prompt_version="v1",value="down",backfill="r1"} 0 1800000060
rag_sidecar_feedback_total{app="a",model="m",prompt_version="v1",value="down",backfill="r1"} 1 1800000120
rag_sidecar_feedback_total{app="a",model="m",prompt_version="v1",value="up",backfill="r1"} 0 1800000000
rag_sidecar_feedback_total{app="a",model="m",prompt_version="v1",value="up",backfill="r1"} 1 1800000060
rag_sidecar_feedback_total{app="a",model="m",prompt_version="v1",value="up",backfill="r1"} 1 1800000120
# TYPE rag_sidecar_feedback_rating histogram
# HELP rag_sidecar_feedback_rating User ratings.
# TYPE rag_sidecar_sampled counter
# HELP rag_sidecar_sampled Traces selected for the LLM judge.
rag_sidecar_sampled_total{reason="rate",backfill="r1"} 0 1800000000
rag_sidecar_sampled_total{reason="rate",backfill="r1"} 1 1800000060
rag_sidecar_sampled_total{reason="rate",backfill="r1"} 1 1800000120
# TYPE rag_sidecar_traces counter
# HELP rag_sidecar_traces Records processed.
rag_sidecar_traces_total{source="replay",outcome="scored",backfill="r1"} 0 1800000000
rag_sidecar_traces_total{source="replay",outcome="scored",backfill="r1"} 2 1800000060
rag_sidecar_traces_total{source="replay",outcome="scored",backfill="r1"} 3 1800000120
# TYPE rag_sidecar_judge_priority_score histogram
# HELP rag_sidecar_judge_priority_score Judge scores of traces judged only for a priority reason.
# TYPE rag_sidecar_feedback_retracted counter
# HELP rag_sidecar_feedback_retracted Thumbs replaced by a changed vote.
# EOF
"""  # noqa: E501 (exact exposition lines)


async def test_exact_file_for_three_events_in_two_steps(tmp_path: Path) -> None:
    batch = [  # out of order, within the lateness window
        result(T0 + 70, flags=["refusal", "pii_email"], feedback=FeedbackView("down")),
        result(T0 + 10, flags=["refusal"], feedback=FeedbackView("up"), reasons=["rate"]),
        result(T0 + 30, app="b"),
    ]
    text = await run(tmp_path, [batch], extra_labels={"backfill": "r1"})
    assert text == EXPECTED
    check_structure(text)


async def test_histogram_point_matches_live_exposition(tmp_path: Path) -> None:
    r = result(T0 + 5, scores={"groundedness_lexical": 0.8, "answer_length": 7.0})
    text = await run(tmp_path, [[r]], step_s=60)
    lines = [ln for ln in text.splitlines() if ln.endswith(f" {T0 + 60}")]
    score = [ln for ln in lines if ln.startswith("rag_sidecar_score")]
    labels = 'app="a",model="m",prompt_version="v1",metric="groundedness_lexical"'
    assert score[7] == f'rag_sidecar_score_bucket{{{labels},le="0.7"}} 0 {T0 + 60}'
    assert score[8] == f'rag_sidecar_score_bucket{{{labels},le="0.8"}} 1 {T0 + 60}'
    assert score[12] == f'rag_sidecar_score_bucket{{{labels},le="+Inf"}} 1 {T0 + 60}'
    assert score[13:] == [
        f"rag_sidecar_score_sum{{{labels}}} 0.8 {T0 + 60}",
        f"rag_sidecar_score_count{{{labels}}} 1 {T0 + 60}",
    ]
    # The same `le` strings as the live exposition (prometheus_client), so series line up.
    ours = {s[1]["le"] for s in parse(text) if s[0].endswith("_bucket")}
    live = PrometheusSink(CollectorRegistry(), metric_kinds=KINDS)
    await live.write([r])
    theirs = {
        s.labels["le"]
        for fam in (live.score, live.count)
        for metric in fam.collect()
        for s in metric.samples
        if s.name.endswith("_bucket")
    }
    assert ours == theirs


async def test_final_state_equals_live_sink(tmp_path: Path) -> None:
    rng = random.Random(7)
    results = [
        result(
            T0 + rng.uniform(0, 3600),
            app=rng.choice(["a", "b", "c", None]),
            model=rng.choice(["m", "n"]),
            scores={"groundedness_lexical": rng.random(), "answer_length": rng.randint(0, 3000)},
            flags=rng.sample(["refusal", "pii_email", "low_groundedness"], rng.randint(0, 2)),
            feedback=FeedbackView(rng.choice(["up", "down", None]), rng.choice([None, 3.0, 9.5])),
            reasons=rng.sample(["rate", "thumbs_down"], rng.randint(0, 2)),
            retracted=rng.choice([None, None, "up", "down"]),  # a changed vote
        )
        for _ in range(400)
    ]
    results.sort(key=lambda r: r.event.timestamp)
    registry = CollectorRegistry()
    await PrometheusSink(registry, max_label_values=2, metric_kinds=KINDS).write(results)
    text = await run(tmp_path, [results[i : i + 50] for i in range(0, 400, 50)], max_label_values=2)
    check_structure(text)
    samples = parse(text)
    end = max(s[3] for s in samples)
    final = [s for s in samples if s[3] == end and not s[0].startswith("rag_sidecar_traces")]
    assert len(final) > 100
    for name, labels, value, _ in final:
        assert registry.get_sample_value(name, labels) == pytest.approx(value), (name, labels)
    apps = {s[1].get("app") for s in final} - {None}
    assert len(apps) == 4 and {"other", "unknown"} <= apps  # two named apps, then the cap
    assert any(s[0] == "rag_sidecar_feedback_retracted_total" and s[2] > 0 for s in final)


async def test_label_cap_unknown_and_escaping(tmp_path: Path) -> None:
    batch = [
        result(T0, app='q"\\\nx', flags=["refusal"]),
        result(T0 + 1, app=None, flags=["refusal"]),
        result(T0 + 2, app="c", flags=["refusal"]),
        result(T0 + 3, app="d" * 300, flags=["refusal"]),
    ]
    text = await run(tmp_path, [batch], max_label_values=1)
    assert 'app="q\\"\\\\\\nx"' in text
    apps = {s[1]["app"] for s in parse(text) if s[0] == "rag_sidecar_flags_total"}
    assert apps == {'q\\"\\\\\\nx', "unknown", "other"}


async def test_lateness_watermark_and_late_events(tmp_path: Path) -> None:
    path = tmp_path / "out.om"
    sink = OpenMetricsBackfillSink(path, step_s=60, lateness_s=120, metric_kinds=KINDS)
    await sink.start()
    await sink.write([result(T0 + 500)])  # watermark T0+380: bucket 8 waits
    assert sink.pending_buckets == 1
    await sink.write([result(T0 + 10)])  # not late yet: nothing emitted so far
    assert sink.pending_buckets == 1 and sink.late == 0  # bucket 0 emitted
    await sink.write([result(T0 + 20)])  # bucket 0 is out: counted in bucket 1
    assert sink.late == 1
    await sink.write([result(T0 + 700), result(float("nan")), result(-5.0)])
    assert sink.skipped == 2
    sink.complete = True
    await sink.aclose()
    text = path.read_text()
    check_structure(text)
    traces = {ts - T0: v for n, _, v, ts in parse(text) if n == "rag_sidecar_traces_total"}
    assert traces == {
        0: 0,
        60: 1,
        **dict.fromkeys(range(120, 481, 60), 2),
        540: 3,
        600: 3,
        660: 3,
        720: 4,
    }


async def test_long_gaps_are_not_filled(tmp_path: Path) -> None:
    batches = [[result(T0 + 10)], [result(T0 + 10 * 3600)]]
    text = await run(tmp_path, batches, lateness_s=0, max_gap_s=3600)
    stamps = [ts - T0 for n, _, _, ts in parse(text) if n == "rag_sidecar_traces_total"]
    assert stamps == [0, 60, 36060]
    batches = [[result(T0 + 10)], [result(T0 + 5 * 3600)]]  # within the 6 h default: filled
    text = await run(tmp_path, batches, lateness_s=0, step_s=600)
    stamps = [ts - T0 for n, _, _, ts in parse(text) if n == "rag_sidecar_traces_total"]
    assert stamps == list(range(0, 18601, 600))


async def test_fractional_steps_and_bad_labels(tmp_path: Path) -> None:
    text = await run(tmp_path, [[result(T0 + 0.2)]], step_s=0.5, lateness_s=0)
    assert {ts for *_, ts in parse(text)} == {T0, T0 + 0.5}
    assert f"1 {T0}.500\n" in text
    for bad in ({"app": "x"}, {"le": "x"}, {"__x": "y"}, {"a-b": "y"}):
        with pytest.raises(ValueError):
            OpenMetricsBackfillSink(tmp_path / "x.om", metric_kinds={}, extra_labels=bad)


async def test_memory_stays_bounded_over_a_long_stream(tmp_path: Path) -> None:
    rng = random.Random(1)
    n, span, step, lateness = 200_000, 14 * 86400, 300.0, 600.0
    path = tmp_path / "big.om"
    sink = OpenMetricsBackfillSink(
        path, step_s=step, lateness_s=lateness, metric_kinds=KINDS, spill_bytes=256 << 10
    )
    await sink.start()
    apps = ["a", "b", "c"]
    max_pending = max_buffered = 0
    for start in range(0, n, 1000):
        batch = [
            result(
                T0 + i * span / n - rng.uniform(0, 400),  # up to 400 s behind: not late
                app=apps[i % 3],
                scores={"groundedness_lexical": rng.random()},
                flags=["refusal"][: i % 2],
            )
            for i in range(start, start + 1000)
        ]
        await sink.write(batch)
        max_pending = max(max_pending, sink.pending_buckets)
        max_buffered = max(max_buffered, sink.buffered_chars)
    assert sink.late == 0 and sink.series == 7
    assert max_pending <= (lateness + 400) / step + 3  # the window, not the stream
    assert max_buffered <= (256 << 10) + 8_000  # the spill threshold plus one snapshot
    sink.complete = True
    await sink.aclose()
    tail = parse(path.read_text()[-2000:].split("\n", 1)[1])
    assert ("rag_sidecar_traces_total", n) in {(s[0], s[2]) for s in tail}


async def test_unfinished_run_goes_to_partial_and_keeps_the_good_file(tmp_path: Path) -> None:
    path = tmp_path / "out.om"
    path.write_text("a good earlier backfill\n")
    sink = OpenMetricsBackfillSink(path, metric_kinds=KINDS)
    await sink.start()
    await sink.write([result(T0 + 5), result(T0 + 65)])
    await sink.aclose()  # never marked complete: interrupted or failed
    assert path.read_text() == "a good earlier backfill\n"
    partial = tmp_path / "out.om.partial"
    assert sink.partial_path == partial
    check_structure(partial.read_text())
    assert entries(tmp_path) == ["out.om", "out.om.partial"]


async def test_unfinished_run_without_samples_leaves_nothing(tmp_path: Path) -> None:
    sink = OpenMetricsBackfillSink(tmp_path / "out.om", metric_kinds=KINDS)
    await sink.start()
    await sink.aclose()
    assert entries(tmp_path) == []


async def test_only_heuristic_events_count_as_traces(tmp_path: Path) -> None:
    judged = result(T0 + 5, scores={"faithfulness": 0.5})
    judged.event.type = "judge"
    feedback = result(T0 + 6, feedback=FeedbackView("up", None))
    feedback.event.type = "feedback"
    text = await run(tmp_path, [[result(T0 + 1), judged, feedback]])
    traces = [v for n, _, v, _ in parse(text) if n == "rag_sidecar_traces_total"]
    assert traces[-1] == 1
    faith = [v for n, lb, v, _ in parse(text) if n == "rag_sidecar_score_count"]
    assert faith[-1] == 1  # the judge's score is still in the score histograms
    ups = [v for n, lb, v, _ in parse(text) if n == "rag_sidecar_feedback_total"]
    assert ups[-1] == 1
