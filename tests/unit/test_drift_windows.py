from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from sidecar.drift.detectors import Histogram
from sidecar.drift.versions import VersionTracker
from sidecar.drift.windows import ReferenceSet, WindowStore

T0 = 1_795_003_200.0  # a multiple of 900 and 3600
KEY = ("app", "m", "v1", "faithfulness")


def store(**kw: float) -> WindowStore:
    args = {"window_s": 900.0, "slot_s": 3600.0, "slots": 24, **kw}
    return WindowStore(**args)  # type: ignore[arg-type]


def feed(s: WindowStore, ts: float, value: float, key: tuple[str, str, str, str] = KEY) -> list:  # type: ignore[type-arg]
    closed = s.roll(ts) if s.due(ts) else []
    s.add(s.get(key, "score", ts), value, ts)
    return closed


def test_tumbling_windows_by_event_time_and_trailing_ring() -> None:
    s = store()
    for i in range(4 * 4):  # four hours, 4 windows an hour, one value per window
        assert feed(s, T0 + i * 900 + 10, 0.5 if i < 8 else 0.9) == [] or i > 0
    assert s.window_start == T0 + 15 * 900
    closed = feed(s, T0 + 16 * 900, 0.1)
    assert len(closed) == 1
    cw = closed[0]
    assert (cw.start, cw.end, cw.current.n, cw.current.mean) == (
        T0 + 15 * 900,
        T0 + 16 * 900,
        1,
        0.9,
    )
    assert cw.trailing.n == 15  # every earlier window, not the closed one
    series = s.series[KEY]
    assert [start for start, _ in series.slots] == [T0, T0 + 3600, T0 + 7200, T0 + 10800]
    assert series.slots[-1][1].n == 4 and series.current.n == 1
    recent = s.recent(KEY)
    assert recent is not None and recent.n == 17


def test_trailing_baseline_forgets_slots_older_than_the_span() -> None:
    s = store(slots=2)  # a 2 h baseline
    for hour in range(5):
        feed(s, T0 + hour * 3600, float(hour) / 10)
    cw = feed(s, T0 + 5 * 3600, 0.0)[0]
    assert cw.trailing.n == 2 and cw.trailing.mean == pytest.approx(0.25)  # hours 2 and 3
    assert len(s.series[KEY].slots) == 2


def test_gaps_and_late_values() -> None:
    s = store()
    feed(s, T0 + 5, 0.5)
    closed = feed(s, T0 + 10 * 900 + 1, 0.7)  # a gap of many windows closes once
    assert len(closed) == 1 and s.window_start == T0 + 9000
    feed(s, T0 + 100, 0.2)  # late: counted into the current window
    assert s.late == 1 and s.series[KEY].current.n == 2


def test_lru_cap_and_idle_expiry() -> None:
    s = store(max_series=2, idle_s=3600.0)
    feed(s, T0, 0.5, ("a", "m", "v", "x"))
    feed(s, T0 + 1, 0.5, ("b", "m", "v", "x"))
    feed(s, T0 + 2, 0.5, ("a", "m", "v", "x"))  # touches a: b is now least recent
    feed(s, T0 + 3, 0.5, ("c", "m", "v", "x"))
    assert list(s.series) == [("a", "m", "v", "x"), ("c", "m", "v", "x")] and s.evicted == 1
    assert [x.key[0] for x in s.take_dropped()] == ["b"] and s.take_dropped() == []
    feed(s, T0 + 900, 0.5, ("c", "m", "v", "x"))  # closes the first window (a and c had values)
    feed(s, T0 + 3 * 3600, 0.5, ("c", "m", "v", "x"))  # a has been idle > 1 h
    assert [x.key[0] for x in s.take_dropped()] == ["a"] and s.evicted == 1


def test_reference_file_lookup_with_wildcards(tmp_path: Path) -> None:
    h20, h2 = Histogram(20), Histogram(2)
    h20.add(0.9)
    h2.add(1.0)
    doc = ReferenceSet(
        {
            ("*", "*", "*", "faithfulness"): h20,
            ("app", "*", "*", "faithfulness"): h20.copy(),
            ("app", "*", "*", "thumbs_down"): h2,
        }
    ).to_json()
    path = tmp_path / "ref.json"
    path.write_bytes(orjson.dumps(doc))
    ref = ReferenceSet.load(path)
    assert (
        ref.lookup(("app", "m", "v1", "faithfulness"), 20)
        is ref.entries[("app", "*", "*", "faithfulness")]
    )
    assert (
        ref.lookup(("other", "m", "v1", "faithfulness"), 20)
        is ref.entries[("*", "*", "*", "faithfulness")]
    )
    assert ref.lookup(("app", "m", "v1", "thumbs_down"), 20) is None  # wrong bins
    assert ref.lookup(("app", "m", "v1", "relevance"), 20) is None
    s = store(reference=ref)  # type: ignore[arg-type]
    assert s.get(("app", "m", "v1", "faithfulness"), "score", T0).reference is not None
    path.write_text('{"format": "nope"}')
    with pytest.raises(ValueError, match="bad drift reference"):
        ReferenceSet.load(path)


def test_version_tracker_pairs_new_variant_with_the_latest_other() -> None:
    v = VersionTracker(max_variants=3)
    assert v.seen("app", ("m", "v1"), 1.0) is None
    assert v.seen("app", ("m", "v1"), 2.0) is None
    assert v.seen("app", ("m", "v2"), 3.0) == (("m", "v1"), ("m", "v2"))
    v.seen("app", ("m", "v1"), 4.0)  # v1 active again: latest other
    assert v.seen("app", ("m2", "v2"), 5.0) == (("m", "v1"), ("m2", "v2"))
    assert v.pairs["app"][:2] == (("m", "v1"), ("m2", "v2"))
    v.seen("app", ("m", "v4"), 6.0)
    assert len(v.variants["app"]) == 3  # capped
    again = VersionTracker()
    again.restore(orjson.loads(orjson.dumps(v.to_json())))
    assert again.variants == v.variants and again.pairs == v.pairs
