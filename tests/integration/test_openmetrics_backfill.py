"""Backfill end to end: sink → promtool blocks → a real Prometheus answering dashboard queries."""

from __future__ import annotations

import asyncio
import random
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sidecar.events import FeedbackView, Labels, Sampling, ScoredEvent
from sidecar.sinks.openmetrics import OpenMetricsBackfillSink
from sidecar.stages import Result
from sidecar.trace import trace_from_object
from tests.conftest import make_trace, require_tool
from tests.support.prom import query

N, SPAN, CHANGE = 2_000, 6 * 3600, 3 * 3600
T0 = (int(time.time()) // 3600 - 30) * 3600  # an hour boundary, a day and more ago
BEFORE = {"a": 0.8, "b": 0.4}
AFTER = {"a": 0.3, "b": 0.9}
FAITH = {"a": 0.75, "b": 0.25}  # the middle of a bucket: exact linear interpolation
TRACE = trace_from_object(make_trace())


def events() -> list[ScoredEvent]:
    out = []
    for i in range(N):
        t = T0 + (i + 0.5) * SPAN / N
        app = "ab"[i % 2]
        g = (BEFORE if t < T0 + CHANGE else AFTER)[app]
        out.append(
            ScoredEvent(
                event_id=f"e{i}",
                trace_id=f"t{i}",
                type="heuristic",
                timestamp=t,
                scored_at=t,
                scorer_version="v",
                source="replay",
                labels=Labels(app, "m", "v1", None),
                scores={"groundedness_lexical": g, "faithfulness": FAITH[app], "answer_length": 40},
                flags=["low_groundedness"] if g < 0.5 else [],
                sampled=Sampling(False, []),
                feedback=FeedbackView("up") if i % 10 == 0 else None,
            )
        )
    return out


async def write_file(path: Path, evs: list[ScoredEvent]) -> OpenMetricsBackfillSink:
    rng = random.Random(3)  # several partitions: each event up to 2 min behind its time
    arrival = sorted(evs, key=lambda e: e.timestamp + rng.uniform(0, 120))
    sink = OpenMetricsBackfillSink(
        path, metric_kinds={"answer_length": "count"}, extra_labels={"backfill": "it-1"}
    )
    await sink.start()
    for i in range(0, N, 100):
        await sink.write([Result(TRACE, e) for e in arrival[i : i + 100]])
    sink.complete = True
    await sink.aclose()
    return sink


MEAN = (
    'sum by (app) (rate(rag_sidecar_score_sum{metric="groundedness_lexical"}[5m]))'
    ' / sum by (app) (rate(rag_sidecar_score_count{metric="groundedness_lexical"}[5m]))'
)
QUANTILE = (
    "histogram_quantile(0.5, sum by (le, app)"
    ' (rate(rag_sidecar_score_bucket{metric="faithfulness"}[1h])))'
)


@pytest.mark.integration
def test_backfilled_history_answers_live_dashboard_queries(
    tmp_path: Path, prometheus: Callable[[Path], str]
) -> None:
    promtool = require_tool("promtool")
    path, evs, data = tmp_path / "history.om", events(), tmp_path / "tsdb"
    sink = asyncio.run(write_file(path, evs))
    assert sink.late == 0 and sink.skipped == 0
    made = subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(path), str(data)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    assert len(list(data.iterdir())) >= 3  # 2 h blocks
    url = prometheus(data)

    for at, want in ((T0 + 5400, BEFORE), (T0 + 16200, AFTER)):
        got = query(url, MEAN, at)
        assert got == pytest.approx(want, abs=1e-9), (at - T0, got)
    assert query(url, QUANTILE, T0 + 7200) == pytest.approx(FAITH, abs=1e-9)

    end = T0 + SPAN
    total = query(url, 'sum(rag_sidecar_score_count{metric="groundedness_lexical"})', end)
    assert total == {"": N}
    traces = query(url, 'rag_sidecar_traces_total{source="replay",backfill="it-1"}', end)
    assert traces == {"": N}
    assert query(url, "sum(rag_sidecar_feedback_total)", end) == {"": N / 10}

    # increase() over exactly one hour of step-aligned samples: no extrapolation.
    flagged = sum(1 for e in evs if e.flags and T0 + 3600 <= e.timestamp < T0 + 7200)
    got = query(url, "sum by (app) (increase(rag_sidecar_flags_total[1h]))", T0 + 7200)
    assert got == pytest.approx({"b": flagged}, abs=1e-9)
    # And the first events count too: each series starts with a 0 sample.
    got = query(url, "sum by (app) (increase(rag_sidecar_flags_total[1h]))", T0 + 3600)
    assert got["b"] == pytest.approx(sum(1 for e in evs if e.flags and e.timestamp < T0 + 3600))
