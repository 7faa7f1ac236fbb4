from __future__ import annotations

import random
from pathlib import Path

import orjson
import pytest

from sidecar.drift import DriftMonitor, DriftSettings, ReferenceSet, state
from sidecar.events import Labels, Sampling, ScoredEvent

T0 = 1_795_003_200.0
FAITH = ("app", "m", "v1", "faithfulness")


def feed(m: DriftMonitor, values: list[tuple[float, float]], pv: str = "v1") -> None:
    for ts, x in values:
        ev = ScoredEvent(
            "e", "t", "judge", ts, ts, "v", "test", Labels("app", "m", pv, None),
            {"faithfulness": x}, [], Sampling(),
        )  # fmt: skip
        m.observe(ev, "app", "m", pv, ts)


def stream(seed: int, start: float, seconds: float, mean: float) -> list[tuple[float, float]]:
    rng = random.Random(seed)
    return [
        (start + i / 2, rng.betavariate(mean * 6, (1 - mean) * 6)) for i in range(int(seconds * 2))
    ]


def settings(**kw: object) -> DriftSettings:
    return DriftSettings(**{"baseline_slots": 3, "online": {"burn_in": 200}, **kw})


def roundtrip(m: DriftMonitor) -> DriftMonitor:
    doc = orjson.loads(state.dumps(state.snapshot(m, saved_at=T0)))
    fresh = DriftMonitor(m.settings)
    assert state.restore(fresh, doc) == []
    return fresh


def test_restore_continues_exactly_where_the_snapshot_left() -> None:
    before = stream(1, T0, 2 * 3600 + 450, 0.85)  # ends mid-window, mid burn-in after nothing
    after = stream(2, before[-1][0] + 0.5, 3600, 0.65)
    a = DriftMonitor(settings())
    feed(a, before)
    a.take_findings()
    b = roundtrip(a)
    sa, sb = a.store.series[FAITH], b.store.series[FAITH]
    assert sb.current.to_json() == sa.current.to_json() and sb.current.n == 900
    assert [s for s, _ in sb.slots] == [s for s, _ in sa.slots]
    assert sb.online["page_hinkley"].to_json() == sa.online["page_hinkley"].to_json()
    feed(a, after)
    feed(b, after)
    fa, fb = a.take_findings(), b.take_findings()
    assert fa == fb and {f.test for f in fa} >= {"page_hinkley", "mean_diff"}


def test_snapshot_keeps_detections_versions_and_pending_events(tmp_path: Path) -> None:
    m = DriftMonitor(settings())
    feed(m, stream(1, T0, 3600, 0.85))
    feed(m, stream(2, T0 + 3600, 1800, 0.6), pv="v2")
    feed(m, stream(3, T0 + 5400, 10, 0.6), pv="v2")
    assert m.store.series[("app", "m", "v2", "faithfulness")].detected.get("version_diff")
    path = tmp_path / "sub" / "drift-state.json"
    pending = [{"event_id": "x", "type": "drift"}]
    state.write_atomic(path, state.dumps(state.snapshot(m, saved_at=T0, pending=pending)))
    state.write_atomic(path, state.dumps(state.snapshot(m, saved_at=T0 + 1, pending=pending)))
    assert [p.name for p in path.parent.iterdir()] == ["drift-state.json"]  # no temp files
    doc = state.read(path)
    assert doc is not None and doc["saved_at"] == T0 + 1
    fresh = DriftMonitor(m.settings)
    assert state.restore(fresh, doc) == pending
    assert fresh.versions.pairs == m.versions.pairs
    assert fresh.store.series[("app", "m", "v2", "faithfulness")].detected == {"version_diff": True}
    assert state.read(tmp_path / "missing.json") is None


def test_incompatible_snapshots_are_refused() -> None:
    m = DriftMonitor(settings())
    feed(m, stream(1, T0, 60, 0.85))
    doc = state.snapshot(m, saved_at=T0)
    with pytest.raises(state.StateMismatch):
        state.restore(DriftMonitor(settings(bins=10)), doc)
    with pytest.raises(state.StateMismatch):
        state.restore(DriftMonitor(settings()), {**doc, "version": 99})


def test_merge_adds_histograms_and_keeps_first_online_state() -> None:
    data = stream(1, T0, 2 * 3600 + 100, 0.85)
    r1, r2, whole = (DriftMonitor(settings()) for _ in range(3))
    feed(r1, data[0::2])
    feed(r2, data[1::2])
    feed(whole, data)
    d1, d2 = (state.snapshot(r, saved_at=T0) for r in (r1, r2))
    merged = state.merge([d1, d2])
    m = DriftMonitor(settings())
    state.restore(m, merged)
    got, want = m.store.series[FAITH], whole.store.series[FAITH]
    assert got.current.counts == want.current.counts and got.current.n == want.current.n
    assert [h.counts for _, h in got.slots] == [h.counts for _, h in want.slots]
    assert (
        got.online["page_hinkley"].to_json()
        == r1.store.series[FAITH].online["page_hinkley"].to_json()
    )
    single = state.merge([d1])
    assert single["series"][0]["current"] == d1["series"][0]["current"]
    with pytest.raises(ValueError):
        state.merge([])


def test_merge_moves_an_older_partial_window_into_the_baseline() -> None:
    early, late = DriftMonitor(settings()), DriftMonitor(settings())
    feed(early, stream(1, T0, 100, 0.85))
    feed(late, stream(2, T0 + 900, 100, 0.85))
    merged = state.merge([state.snapshot(early, saved_at=T0), state.snapshot(late, saved_at=T0)])
    assert merged["window_start"] == T0 + 900
    item = merged["series"][0]
    assert item["current"]["n"] == 200 and [s for s, _ in item["slots"]] == [T0]


def test_reference_from_snapshot_round_trips_into_a_reference_set() -> None:
    m = DriftMonitor(settings(flags=["refusal"]))
    feed(m, stream(1, T0, 1000, 0.85))
    doc = state.reference_from_snapshot(state.snapshot(m, saved_at=T0), metrics=["faithfulness"])
    ref = ReferenceSet.from_json(doc)
    hist = ref.lookup(FAITH, 20)
    assert hist is not None and hist.n == 2000 and list(ref.entries) == [FAITH]


def test_restore_republishes_alarms_at_once() -> None:
    """A restart must not resolve and re-fire the drift alerts: restored alarms are exported
    before the next window closes."""

    class Stats:
        def __init__(self) -> None:
            self.detected: dict[tuple[object, str], bool] = {}

        def stat(self, key: object, test: str, v: float, p: float | None, det: bool) -> None:
            self.detected[(key, test)] = det

        def window(self, *a: object) -> None: ...
        def version(self, *a: object) -> None: ...
        def drop_series(self, *a: object) -> None: ...
        def drop_version(self, *a: object) -> None: ...

    a = DriftMonitor(settings())
    feed(a, stream(1, T0, 2 * 3600, 0.85) + stream(2, T0 + 2 * 3600, 1800, 0.55))
    alarms = {t for t, on in a.store.series[FAITH].detected.items() if on}
    assert alarms >= {"mean_diff"}
    doc = orjson.loads(state.dumps(state.snapshot(a, saved_at=T0)))
    exported = Stats()
    fresh = DriftMonitor(a.settings, exported)  # type: ignore[arg-type]
    state.restore(fresh, doc)
    assert {t for (k, t), on in exported.detected.items() if on and k == FAITH} >= alarms
