from __future__ import annotations

import asyncio
import json
import random
import subprocess
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from sidecar.drift import DriftSettings, DriftSink
from sidecar.errors import ConfigError
from sidecar.events import FeedbackView, Labels, Sampling, ScoredEvent
from sidecar.sinks.prometheus import PrometheusSink
from sidecar.stages import Result
from sidecar.trace import trace_from_object
from tests.conftest import make_trace, require_tool

T0 = 1_795_003_200.0
TRACE = trace_from_object(make_trace())


def result(ts: float, value: float, *, app: str = "app", pv: str = "v1", **kw: Any) -> Result:
    ev = ScoredEvent(
        "e", "t", kw.get("kind", "judge"), ts, ts, "v", "test", Labels(app, "m", pv, None),
        {"faithfulness": value}, list(kw.get("flags", [])), Sampling(), kw.get("feedback"),
    )  # fmt: skip
    return Result(TRACE, ev)


def batches(
    start: float, seconds: float, mean: float, seed: int = 0, **kw: Any
) -> list[list[Result]]:
    rng = random.Random(seed)
    rs = [
        result(start + i / 2, rng.betavariate(mean * 6, (1 - mean) * 6), **kw)
        for i in range(int(seconds * 2))
    ]
    return [rs[i : i + 200] for i in range(0, len(rs), 200)]


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


async def feed(sink: DriftSink, clock: Clock, groups: list[list[Result]]) -> None:
    for group in groups:
        clock.now = group[-1].event.timestamp
        await sink.write(group)


def value(reg: CollectorRegistry, name: str, **labels: str) -> float | None:
    return reg.get_sample_value(name, labels)


SERIES = {"app": "app", "model": "m", "prompt_version": "v1", "metric": "faithfulness"}


async def test_gauges_and_drift_events_on_a_drop() -> None:
    reg, clock, emitted = CollectorRegistry(), Clock(), []

    async def emit(events: list[ScoredEvent]) -> None:
        emitted.extend(events)

    sink = DriftSink(DriftSettings(), reg, clock=clock, emit_events=emit)
    await sink.start()
    await feed(sink, clock, batches(T0, 3600, 0.85))
    assert emitted == []
    assert value(reg, "rag_sidecar_window_samples", **SERIES) == 1800
    assert value(reg, "rag_sidecar_drift_detected", **SERIES, test="mean_diff") == 0
    await feed(sink, clock, batches(T0 + 3600, 600, 0.6, seed=1))
    assert [(e.type, e.detail["test"], e.detail["state"]) for e in emitted] == [  # type: ignore[index]
        ("drift", "page_hinkley", "detected")
    ]
    assert value(reg, "rag_sidecar_drift_detected", **SERIES, test="page_hinkley") == 1
    assert (value(reg, "rag_sidecar_drift", **SERIES, test="page_hinkley") or 0) >= 0
    assert value(reg, "rag_sidecar_drift_events_total", test="page_hinkley", state="detected") == 1
    await feed(sink, clock, batches(T0 + 4200, 600, 0.6, seed=2))
    tests = {(e.detail or {})["test"] for e in emitted}
    assert {"psi", "ks", "mean_diff"} <= tests
    assert value(reg, "rag_sidecar_drift_detected", **SERIES, test="psi") == 1
    p = value(reg, "rag_sidecar_drift_p_value", **SERIES, test="mean_diff")
    assert p is not None and p < 1e-6
    assert value(reg, "rag_sidecar_drift_series") == 2  # faithfulness + flag:judge_contradicted
    await sink.aclose()


async def test_version_readout_gauges() -> None:
    reg, clock = CollectorRegistry(), Clock()
    sink = DriftSink(DriftSettings(), reg, clock=clock)
    await feed(sink, clock, batches(T0, 1800, 0.85))
    await feed(sink, clock, batches(T0 + 1800, 900, 0.75, pv="v2"))
    labels = {"app": "app", "metric": "faithfulness", "baseline": "m/v1", "candidate": "m/v2"}
    est = value(reg, "rag_sidecar_version_diff", **labels, bound="estimate")
    low = value(reg, "rag_sidecar_version_diff", **labels, bound="low")
    high = value(reg, "rag_sidecar_version_diff", **labels, bound="high")
    assert est is not None and low is not None and high is not None
    assert low < est < high < 0 and est == pytest.approx(-0.1, abs=0.03)
    assert value(reg, "rag_sidecar_version_samples", **labels, side="baseline") == 3600


async def test_failed_emission_is_retried_and_never_fails_the_write() -> None:
    reg, clock, emitted, fail = CollectorRegistry(), Clock(), [], [True]

    async def emit(events: list[ScoredEvent]) -> None:
        if fail[0]:
            raise OSError("topic unavailable")
        emitted.extend(events)

    s = DriftSettings(max_pending_events=1)
    sink = DriftSink(s, reg, clock=clock, emit_events=emit)
    await feed(sink, clock, batches(T0, 1800, 0.85))
    await feed(sink, clock, batches(T0 + 1800, 1800, 0.5, seed=1))  # several findings
    assert emitted == [] and len(sink.pending) == 1
    assert (value(reg, "rag_sidecar_drift_events_dropped_total") or 0) >= 1
    fail[0] = False
    await sink.flush()
    assert len(emitted) == 1 and sink.pending == []


async def test_snapshot_on_timer_and_close_then_restore(tmp_path: Path) -> None:
    path = tmp_path / "drift.json"
    s = DriftSettings(snapshot_path=path, snapshot_interval_s=0.01)
    reg, clock = CollectorRegistry(), Clock()
    sink = DriftSink(s, reg, clock=clock)
    await sink.start()
    await feed(sink, clock, batches(T0, 1000, 0.85))
    for _ in range(300):  # the file appears before the counter moves: wait for both
        if path.exists() and value(reg, "rag_sidecar_drift_snapshots_total", outcome="ok"):
            break
        await asyncio.sleep(0.01)
    assert (
        path.exists() and (value(reg, "rag_sidecar_drift_snapshots_total", outcome="ok") or 0) >= 1
    )
    await sink.aclose()
    again = DriftSink(s, CollectorRegistry(), clock=clock)
    await again.start()
    key = ("app", "m", "v1", "faithfulness")
    assert again.monitor.store.series[key].current.n == sink.monitor.store.series[key].current.n
    await again.aclose()
    path.write_text("{not json")
    broken_reg = CollectorRegistry()
    broken = DriftSink(s, broken_reg, clock=clock)
    await broken.start()  # a corrupt file never blocks the start
    assert value(broken_reg, "rag_sidecar_drift_snapshots_total", outcome="restore_error") == 1
    assert broken.monitor.store.series == {}
    await broken.aclose()


async def test_bad_reference_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "ref.json"
    bad.write_text("[]")
    sink = DriftSink(DriftSettings(reference_path=bad), CollectorRegistry())
    with pytest.raises(ConfigError):
        await sink.start()


async def test_shares_the_prometheus_label_limiter_and_passes_promtool() -> None:
    reg, clock = CollectorRegistry(), Clock()
    prom = PrometheusSink(reg, max_label_values=2)
    sink = DriftSink(DriftSettings(), reg, clock=clock, limiter=prom.limit)
    results = [
        result(T0 + i, 0.9, app=f"app{i % 3}", kind="heuristic", flags=["refusal"],
               feedback=FeedbackView("down" if i % 7 == 0 else "up", None))
        for i in range(2000)
    ]  # fmt: skip
    await prom.write(results)
    await feed(sink, clock, [results[i : i + 200] for i in range(0, 2000, 200)])
    assert {k[0] for k in sink.monitor.store.series} == {"app0", "app1", "other"}
    assert value(reg, "rag_sidecar_window_mean", app="other", model="m", prompt_version="v1",
                 metric="flag:refusal") == 1.0  # fmt: skip
    text = generate_latest(reg)
    promtool = require_tool("promtool")
    proc = await asyncio.to_thread(
        subprocess.run, [promtool, "check", "metrics"], input=text, capture_output=True, check=False
    )
    assert proc.returncode == 0, proc.stdout.decode() + proc.stderr.decode()


def _corrupt(doc: dict[str, Any], how: str) -> None:
    item = doc["series"][0]
    if how == "versions":
        doc["versions"] = []
    elif how == "detected":
        item["detected"] = []
    elif how == "huge_count":
        item["current"]["counts"][0] += 2**70
        item["current"]["n"] += 2**70
    elif how == "short_key":
        item["key"] = item["key"][:3]
    elif how == "window_start":
        doc["window_start"] = "yesterday"
    elif how == "bins":
        item["kind"] = "rate"  # a 20-bin histogram where 2 bins are expected
    elif how == "pending":
        doc["pending_events"] = [{"not": "an event"}]


@pytest.mark.parametrize(
    "how", ["versions", "detected", "huge_count", "short_key", "window_start", "bins", "pending"]
)
async def test_a_corrupt_snapshot_is_set_aside_and_never_crashes(tmp_path: Path, how: str) -> None:
    """Valid JSON with a bad part used to crash the start (AttributeError, OverflowError) or
    restore a series that then crashed every write at the next window close."""
    path = tmp_path / "drift.json"
    s = DriftSettings(snapshot_path=path, snapshot_interval_s=3600)
    clock = Clock()
    sink = DriftSink(s, CollectorRegistry(), clock=clock)
    await sink.start()
    await feed(sink, clock, batches(T0, 1000, 0.85))
    await sink.aclose()
    doc = orjson.loads(path.read_bytes())
    doc["series"][0]["detected"] = {"ks": True}
    labels = dict(zip(_KEY, doc["series"][0]["key"], strict=True))
    _corrupt(doc, how)
    path.write_text(json.dumps(doc))  # orjson cannot write a count past 64 bits
    reg = CollectorRegistry()
    again = DriftSink(s, reg, clock=clock)
    await again.start()
    assert value(reg, "rag_sidecar_drift_snapshots_total", outcome="restore_error") == 1
    assert again.monitor.store.series == {} and again.pending == []
    assert not path.exists() and path.with_name("drift.json.rejected").exists()
    ks = value(reg, "rag_sidecar_drift_detected", **labels, test="ks")
    assert ks is None  # no alarm gauge left behind by the failed restore
    await feed(again, clock, batches(T0 + 1000, 2000, 0.85))  # windows close: no crash
    await again.aclose()


_KEY = ("app", "model", "prompt_version", "metric")


async def test_snapshots_never_overlap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The timer and a pipeline flush both snapshot: two threads writing the same temporary
    file could rename the other's half-written one into place."""
    from sidecar.drift import state

    active, overlap, written = [0], [False], []
    real = state.write_atomic

    def slow_write(path: Path, data: bytes) -> None:
        active[0] += 1
        overlap[0] |= active[0] > 1
        threading.Event().wait(0.05)  # long enough for the other write to start
        real(path, data)
        written.append(data)
        active[0] -= 1

    monkeypatch.setattr(state, "write_atomic", slow_write)
    path = tmp_path / "drift.json"
    sink = DriftSink(DriftSettings(snapshot_path=path), CollectorRegistry(), clock=Clock())
    await asyncio.gather(sink.snapshot(), sink.flush(), sink.snapshot())
    assert len(written) == 3 and not overlap[0]
    assert orjson.loads(path.read_bytes())["format"] == "rag-sidecar-drift-state"
