from __future__ import annotations

import random
from typing import Any

import pytest

from sidecar.drift import DriftMonitor, DriftSettings, ReferenceSet, finding_event
from sidecar.drift.detectors import Histogram, MeanDiff
from sidecar.drift.outputs import Finding
from sidecar.drift.windows import SeriesKey
from sidecar.events import FeedbackView, Labels, Sampling, ScoredEvent, dumps, loads

T0 = 1_795_003_200.0
FAITH = ("app", "m", "v1", "faithfulness")


class Recorder:
    """An Exporter that keeps the latest values."""

    def __init__(self) -> None:
        self.stats: dict[tuple[SeriesKey, str], tuple[float, float | None, bool]] = {}
        self.windows: dict[SeriesKey, tuple[float, int]] = {}
        self.versions: dict[tuple[str, str, str, str], MeanDiff] = {}
        self.dropped: list[Any] = []

    def stat(
        self, key: SeriesKey, test: str, value: float, p_value: float | None, detected: bool
    ) -> None:
        self.stats[(key, test)] = (value, p_value, detected)

    def window(self, key: SeriesKey, mean: float, n: int) -> None:
        self.windows[key] = (mean, n)

    def version(self, app: str, metric: str, baseline: str, candidate: str, d: MeanDiff) -> None:
        self.versions[(app, metric, baseline, candidate)] = d

    def drop_series(self, key: SeriesKey) -> None:
        self.dropped.append(key)

    def drop_version(self, app: str, baseline: str, candidate: str) -> None:
        self.dropped.append((app, baseline, candidate))


def event(
    ts: float,
    scores: dict[str, float],
    *,
    pv: str = "v1",
    kind: str = "judge",
    flags: tuple[str, ...] = (),
    thumbs: str | None = None,
) -> ScoredEvent:
    fb = FeedbackView(thumbs, None) if thumbs else None  # type: ignore[arg-type]
    return ScoredEvent(
        "e", "t", kind, ts, ts, "v", "test", Labels("app", "m", pv, None),  # type: ignore[arg-type]
        scores, list(flags), Sampling(), fb,
    )  # fmt: skip


def run(
    m: DriftMonitor, seconds: float, mean: float, *, start: float, rate: float = 2.0, **kw: Any
) -> float:
    rng = random.Random(int(start))
    n = int(seconds * rate)
    for i in range(n):
        ts = start + i / rate
        ev = event(ts, {"faithfulness": rng.betavariate(mean * 6, (1 - mean) * 6)}, **kw)
        m.observe(ev, "app", "m", ev.labels.prompt_version or "", ts)
        if i % 100 == 99:
            m.end_batch(ts)
    return start + n / rate


def settings(**kw: Any) -> DriftSettings:
    return DriftSettings(**{"baseline_slots": 2, "flags": [], **kw})


def by_test(findings: list[Finding]) -> dict[str, list[Finding]]:
    out: dict[str, list[Finding]] = {}
    for f in findings:
        out.setdefault(f.test, []).append(f)
    return out


def test_drop_fires_online_fast_then_window_tests_then_clears() -> None:
    rec = Recorder()
    m = DriftMonitor(settings(), rec)
    t = run(m, 3 * 3600, 0.85, start=T0)
    assert m.take_findings() == []  # three quiet hours: no alarm
    change = t
    t = run(m, 3 * 3600, 0.60, start=t)
    found = by_test(m.take_findings())
    ph = found["page_hinkley"]
    assert ph[0].state == "detected" and ph[0].direction == "down"
    assert ph[0].at - change < 60  # within a minute at 2 values/s
    assert ph[1].state == "cleared" and ph[1].at >= ph[0].at + 900
    for test in ("psi", "ks", "mean_diff"):
        first = found[test][0]
        assert first.state == "detected" and first.direction == "down"
        assert first.at - change <= 2 * 900  # at the first (or second) window close
        assert first.baseline["kind"] == "trailing" and first.current["n"] > 0
        # the 2 h trailing baseline learns the new level: the alarm clears
        assert found[test][-1].state == "cleared"
    _, p, detected = rec.stats[(FAITH, "mean_diff")]
    assert not detected and p is not None
    mean, n = rec.windows[FAITH]
    assert n == 1800 and mean == pytest.approx(0.60, abs=0.03)
    assert rec.stats[(FAITH, "page_hinkley")][2] is False


def test_small_windows_never_alarm() -> None:
    m = DriftMonitor(settings(online={"detectors": []}))
    t = run(m, 3 * 3600, 0.85, start=T0, rate=0.05)  # 45 values a window: below min_samples
    run(m, 3 * 3600, 0.30, start=t, rate=0.05)
    assert m.take_findings() == []


def test_rates_flags_and_thumbs_down() -> None:
    rec = Recorder()
    m = DriftMonitor(settings(metrics=[], flags=["refusal", "judge_contradicted"]), rec)
    rng = random.Random(1)
    for i in range(4 * 3600):
        ts = T0 + i
        p_down = 0.05 if i < 3 * 3600 else 0.30
        thumbs = "down" if rng.random() < p_down else "up"
        flags = ("refusal", "judge_contradicted") if i % 10 == 0 else ()
        m.observe(event(ts, {}, kind="heuristic", flags=flags, thumbs=thumbs), "app", "m", "v1", ts)
    m.observe(event(T0 + 5 * 3600, {}, kind="heuristic"), "app", "m", "v1", T0 + 5 * 3600)
    found = by_test(m.take_findings())
    assert [f.key[3] for f in found["chi2"]] == ["thumbs_down"]
    assert found["chi2"][0].direction == "up" and found["chi2"][0].effect > 0.2
    assert rec.windows[("app", "m", "v1", "flag:refusal")] == (pytest.approx(0.1, abs=0.01), 900)
    # judge_* flags count over judge events only: none were seen
    assert ("app", "m", "v1", "flag:judge_contradicted") not in m.store.series


def test_embedding_scores_are_monitored_without_flags() -> None:
    rec = Recorder()
    m = DriftMonitor(settings(flags=["refusal", "judge_contradicted"]), rec)
    t = run(m, 3 * 3600, 0.85, start=T0, kind="embedding", flags=("refusal",))
    run(m, 3 * 3600, 0.50, start=t, kind="embedding", flags=("refusal",))
    found = by_test(m.take_findings())
    assert found["page_hinkley"][0].key == FAITH and found["psi"][0].direction == "down"
    # embedding events raise no flags: neither flag series exists
    assert not [k for k in m.store.series if k[3].startswith("flag:")]


def test_drift_events_and_future_timestamps() -> None:
    m = DriftMonitor(settings())
    m.observe(event(T0, {"faithfulness": 0.5}, kind="drift"), "app", "m", "v1", T0)
    assert m.store.series == {}
    m.observe(event(T0 + 10**6, {"faithfulness": 0.5}), "app", "m", "v1", T0)
    assert m.store.series[FAITH].last_seen == T0  # far-future event time taken as now


def test_version_readout_regression_and_replacement() -> None:
    rec = Recorder()
    m = DriftMonitor(settings(online={"detectors": []}), rec)
    t = run(m, 3600, 0.85, start=T0, pv="v1")
    t = run(m, 1800, 0.70, start=t, pv="v2")
    d = rec.versions[("app", "faithfulness", "m/v1", "m/v2")]
    assert d.estimate == pytest.approx(-0.15, abs=0.03) and d.low < d.estimate < d.high < 0
    assert d.n_baseline == 7200 and d.n_candidate == 3600
    found = by_test(m.take_findings())
    hit = found["version_diff"][0]
    assert hit.state == "detected" and hit.key == ("app", "m", "v2", "faithfulness")
    assert hit.baseline["variant"] == "m/v1" and hit.extra["high"] < 0
    assert rec.stats[(hit.key, "version_diff")][2] is True
    run(m, 60, 0.70, start=t, pv="v3")
    found = by_test(m.take_findings())
    assert found["version_diff"][0].state == "cleared"
    assert found["version_diff"][0].extra == {"reason": "replaced"}
    assert ("app", "m/v1", "m/v2") in rec.dropped


def test_reference_tests_run_beside_trailing_ones() -> None:
    ref = Histogram(20)
    rng = random.Random(9)
    for _ in range(5000):
        ref.add(rng.betavariate(0.95 * 6, 0.05 * 6))
    m = DriftMonitor(settings(), reference=ReferenceSet({("*", "*", "*", "faithfulness"): ref}))
    run(m, 1800, 0.85, start=T0)
    found = by_test(m.take_findings())
    assert {"psi_ref", "mean_diff_ref", "ks_ref"} <= found.keys()
    assert found["mean_diff_ref"][0].baseline["kind"] == "reference"
    assert "mean_diff" not in found  # the trailing day agrees with itself


def test_finding_event_is_a_stable_drift_event() -> None:
    m = DriftMonitor(settings())
    t = run(m, 1800, 0.85, start=T0)
    run(m, 1800, 0.50, start=t)
    f = m.take_findings()[0]
    ev = finding_event(f, scored_at=T0 + 99)
    again = finding_event(f, scored_at=T0 + 123)
    assert ev.event_id == again.event_id and ev.type == "drift"
    assert ev.labels == Labels("app", "m", "v1", None) and ev.flags == ["drift_detected"]
    assert ev.trace_id == "drift:app/m/v1/faithfulness"
    assert ev.detail is not None and ev.detail["test"] == f.test
    assert f.test in ev.scores and ev.detail["baseline"]["kind"] == "online"
    assert loads(dumps(ev)) == ev


def test_default_names_exist_and_settings_validate() -> None:
    from sidecar.scorers.embeddings import EMBEDDING_METRICS
    from sidecar.scorers.heuristics.registry import FLAGS, METRICS
    from sidecar.scorers.judge import JUDGE_FLAGS, JUDGE_METRICS

    s = DriftSettings()
    ratio = {n for n, spec in METRICS.items() if spec.kind == "ratio"} | set(JUDGE_METRICS)
    ratio |= set(EMBEDDING_METRICS)
    assert set(s.metrics) <= ratio
    assert set(s.flags) <= set(FLAGS) | set(JUDGE_FLAGS)
    assert s.baseline_s == 86400
    with pytest.raises(ValueError, match="multiple of window_s"):
        DriftSettings(window_s=700)
    with pytest.raises(ValueError):
        DriftSettings(online={"detectors": ["adwin"]})


def test_a_version_that_stops_serving_clears_its_alarms() -> None:
    """Roll v2 back to v1: v2's version_diff (and window alarms) clear after quiet_s, not
    when the series expires after idle_s (two days)."""
    rec = Recorder()
    m = DriftMonitor(settings(online={"detectors": []}, quiet_s=3600), rec)
    t = run(m, 3600, 0.85, start=T0, pv="v1")
    t = run(m, 1800, 0.70, start=t, pv="v2")
    v2 = ("app", "m", "v2", "faithfulness")
    assert rec.stats[(v2, "version_diff")][2] is True
    m.take_findings()
    t = run(m, 1800, 0.85, start=t, pv="v1")  # rolled back: v2 gets nothing any more
    assert rec.stats[(v2, "version_diff")][2] is True  # not yet quiet_s
    run(m, 2 * 3600, 0.85, start=t, pv="v1")
    cleared = [f for f in m.take_findings() if f.key == v2 and f.state == "cleared"]
    assert [f.test for f in cleared] == ["version_diff"]
    assert cleared[0].extra == {"reason": "no_traffic"}
    assert rec.stats[(v2, "version_diff")] == (0.0, None, False)
    assert ("app", "m/v1", "m/v2") in rec.dropped  # the readout gauges are gone
    assert v2 in m.store.series  # its history stays until idle_s


def test_a_rare_flag_outage_is_detected_and_clears() -> None:
    """Every trace flagged empty_retrieval for one window (at ~110 traces a window) against a
    day without one: chi2 skipped it (expected count < 5) and never alarmed."""
    m = DriftMonitor(settings(metrics=[], flags=["empty_retrieval"], baseline_slots=24))
    key = ("app", "m", "v1", "flag:empty_retrieval")
    outage = (T0 + 25 * 3600, T0 + 25 * 3600 + 900)
    for i in range(0, 27 * 3600, 8):
        ts = T0 + i
        flags = ("empty_retrieval",) if outage[0] <= ts < outage[1] else ()
        m.observe(event(ts, {}, kind="heuristic", flags=flags), "app", "m", "v1", ts)
    found = [(f.key, f.state) for f in m.take_findings() if f.test == "chi2"]
    assert found == [(key, "detected"), (key, "cleared")]


def test_non_finite_scores_are_ignored_like_nan() -> None:
    """-inf (a log of zero upstream) was clipped to 0.0: a broken scorer looked like drift."""
    m = DriftMonitor(settings())
    for i, bad in enumerate((float("-inf"), float("inf"), float("nan"))):
        m.observe(event(T0 + i, {"faithfulness": bad}), "app", "m", "v1", T0 + i)
    m.observe(event(T0 + 5, {"faithfulness": 0.9}), "app", "m", "v1", T0 + 5)
    assert m.store.series[FAITH].current.n == 1
    assert m.store.series[FAITH].current.mean == pytest.approx(0.9)
