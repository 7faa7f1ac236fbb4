"""Per-series windows: the current tumbling window, a trailing baseline ring, a reference.

A series is (app, model, prompt_version, metric). All series share one tumbling
window ``[start, start + window_s)`` aligned to multiples of ``window_s`` since
the epoch, advanced by *event time*: the first value at or past the window's end
closes the window of every series at once (:meth:`WindowStore.roll`). Values
older than the current window ("late") are counted into the current window.

Closed windows are added into a ring of ``baseline_slots`` slots of
``baseline_slot_s`` each (default 24 × 1 h); the trailing baseline of a window
is the merge, on demand, of the slots that started within ``baseline_s`` before
it (the previous day at slot granularity). Memory per series is therefore
(slots + 1) histograms of ``bins`` counts plus a few floats, whatever the
traffic; the number of series is capped (least recently used evicted, counted),
and series idle for ``idle_s`` are dropped.

A frozen reference is a JSON file of histograms in the same format::

    {"format": "rag-sidecar-drift-reference", "version": 1,
     "series": [{"app": "support-bot", "model": "*", "prompt_version": "*",
                 "metric": "faithfulness", "hist": {"counts": [...], "n": 1200,
                                                    "sum": 1011.3, "sumsq": 870.2}}]}

``*`` matches any label value; the most specific entry wins.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson

from .detectors import Histogram
from .online import OnlineDetector

SeriesKey = tuple[str, str, str, str]
"""(app, model, prompt_version, metric) — label values as exported."""
SeriesKind = Literal["score", "rate"]
REFERENCE_FORMAT = "rag-sidecar-drift-reference"
WILDCARD = "*"


class Series:
    """Everything kept for one series; the monitor owns the detector fields."""

    __slots__ = (
        "alarm_until",
        "current",
        "detected",
        "key",
        "kind",
        "last_seen",
        "online",
        "reference",
        "slots",
    )

    def __init__(self, key: SeriesKey, kind: SeriesKind, bins: int, slots: int) -> None:
        self.key = key
        self.kind: SeriesKind = kind
        self.current = Histogram(bins if kind == "score" else 2)
        self.slots: deque[tuple[float, Histogram]] = deque(maxlen=slots)
        self.last_seen = -math.inf
        self.online: dict[str, OnlineDetector] = {}
        self.detected: dict[str, bool] = {}
        """Window tests (and version_diff) currently in alarm."""
        self.alarm_until: dict[str, float] = {}
        """Online tests in alarm, until this event time."""
        self.reference: Histogram | None = None

    def push(self, window_start: float, hist: Histogram, slot_s: float) -> None:
        """Add a closed window's histogram into its baseline slot."""
        if hist.n == 0:
            return
        slot = math.floor(window_start / slot_s) * slot_s
        if self.slots and self.slots[-1][0] == slot:
            self.slots[-1][1].merge(hist)
        elif not self.slots or self.slots[-1][0] < slot:
            self.slots.append((slot, hist.copy()))
        else:  # restored out of order: merge into the matching slot if it is still kept
            for start, kept in self.slots:
                if start == slot:
                    kept.merge(hist)
                    break

    def trailing(self, before: float, span: float) -> Histogram:
        """Merge of the slots starting in [before − span, before)."""
        out = Histogram(self.current.bins)
        lo = before - span
        for start, hist in self.slots:
            if lo <= start < before:
                out.merge(hist)
        return out


@dataclass(frozen=True, slots=True)
class ClosedWindow:
    """A window just closed for one series, with its trailing baseline."""

    series: Series
    start: float
    end: float
    current: Histogram
    trailing: Histogram


class WindowStore:
    """All series, their shared window clock and the LRU cap."""

    def __init__(
        self,
        *,
        bins: int = 20,
        window_s: float = 900.0,
        slot_s: float = 3600.0,
        slots: int = 24,
        max_series: int = 2000,
        idle_s: float = 172800.0,
        reference: ReferenceSet | None = None,
    ) -> None:
        self.bins = bins
        self.window_s = window_s
        self.slot_s = slot_s
        self.slots = slots
        self.max_series = max_series
        self.idle_s = idle_s
        self.reference = reference
        self.series: OrderedDict[SeriesKey, Series] = OrderedDict()
        self.window_start: float | None = None
        self.evicted = 0
        self.late = 0
        self._dropped: list[Series] = []

    @property
    def baseline_s(self) -> float:
        """Span of the trailing baseline."""
        return self.slot_s * self.slots

    def align(self, ts: float) -> float:
        """Start of the window holding ``ts``."""
        return math.floor(ts / self.window_s) * self.window_s

    def get(self, key: SeriesKey, kind: SeriesKind, ts: float) -> Series:
        """The series (created, evicting the least recently used one at the cap)."""
        series = self.series.get(key)
        if series is None:
            if len(self.series) >= self.max_series:
                _, old = self.series.popitem(last=False)
                self._dropped.append(old)
                self.evicted += 1
            series = Series(key, kind, self.bins, self.slots)
            if self.reference is not None:
                series.reference = self.reference.lookup(key, series.current.bins)
            self.series[key] = series
        else:
            self.series.move_to_end(key)
        if ts > series.last_seen:
            series.last_seen = ts
        return series

    def add(self, series: Series, value: float, ts: float) -> None:
        """Count a value into the series' current window (late values included)."""
        if self.window_start is not None and ts < self.window_start:
            self.late += 1
        series.current.add(value)

    def due(self, ts: float) -> bool:
        """Whether ``ts`` lies past the current window (call :meth:`roll` first)."""
        if self.window_start is None:
            self.window_start = self.align(ts)
            return False
        return ts >= self.window_start + self.window_s

    def roll(self, ts: float) -> list[ClosedWindow]:
        """Close the current window of every series; the new one holds ``ts``."""
        start = self.window_start
        new_start = self.align(ts)
        self.window_start = new_start
        if start is None or new_start <= start:
            return []
        end = start + self.window_s
        closed: list[ClosedWindow] = []
        for key, series in list(self.series.items()):
            hist = series.current
            if hist.n:
                trailing = series.trailing(start, self.baseline_s)
                closed.append(ClosedWindow(series, start, end, hist, trailing))
                series.push(start, hist, self.slot_s)
                series.current = Histogram(hist.bins)
            elif series.last_seen < new_start - self.idle_s:
                del self.series[key]
                self._dropped.append(series)
        return closed

    def take_dropped(self) -> list[Series]:
        """Series evicted or expired since the last call (their gauges must go)."""
        dropped, self._dropped = self._dropped, []
        return dropped

    def recent(self, key: SeriesKey) -> Histogram | None:
        """Trailing baseline plus the current window of ``key`` (None if unknown)."""
        series = self.series.get(key)
        if series is None or self.window_start is None:
            return None
        hist = series.trailing(self.window_start, self.baseline_s)
        hist.merge(series.current)
        return hist


class ReferenceSet:
    """Frozen reference histograms, looked up with ``*`` wildcards."""

    def __init__(self, entries: dict[SeriesKey, Histogram]) -> None:
        self.entries = entries

    def lookup(self, key: SeriesKey, bins: int) -> Histogram | None:
        """The most specific entry for ``key`` with ``bins`` bins, if any."""
        app, model, pv, metric = key
        w = WILDCARD
        for cand in ((app, model, pv, metric), (app, model, w, metric), (app, w, w, metric)):
            hist = self.entries.get(cand)
            if hist is not None and hist.bins == bins:
                return hist
        hist = self.entries.get((w, w, w, metric))
        return hist if hist is not None and hist.bins == bins else None

    def to_json(self) -> dict[str, Any]:
        """The reference-file document."""
        names = ("app", "model", "prompt_version", "metric")
        return {
            "format": REFERENCE_FORMAT,
            "version": 1,
            "series": [
                {**dict(zip(names, key, strict=True)), "hist": hist.to_json()}
                for key, hist in self.entries.items()
            ],
        }

    @classmethod
    def from_json(cls, doc: Any) -> ReferenceSet:
        """Parse a reference document; raises ValueError when malformed."""
        if (
            not isinstance(doc, dict)
            or doc.get("format") != REFERENCE_FORMAT
            or doc.get("version") != 1
        ):
            raise ValueError(f"not a {REFERENCE_FORMAT} version 1 document")
        entries: dict[SeriesKey, Histogram] = {}
        for item in doc.get("series", []):
            key = (
                str(item.get("app", WILDCARD)),
                str(item.get("model", WILDCARD)),
                str(item.get("prompt_version", WILDCARD)),
                str(item["metric"]),
            )
            entries[key] = Histogram.from_json(item["hist"])
        return cls(entries)

    @classmethod
    def load(cls, path: Path) -> ReferenceSet:
        """Read a reference file."""
        try:
            return cls.from_json(orjson.loads(path.read_bytes()))
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"bad drift reference {path}: {exc}") from exc
