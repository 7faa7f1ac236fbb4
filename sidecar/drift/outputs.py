"""What the monitor reports: statistics (to an :class:`Exporter`) and findings (drift events)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from ..events import Labels, Sampling, ScoredEvent, make_event_id
from .detectors import MeanDiff
from .windows import SeriesKey

DRIFT_VERSION = "drift-1"
"""``scorer_version`` of drift events (part of their ``event_id``)."""


class Exporter(Protocol):
    """Where statistics go (the sink's gauges; a no-op or a recorder in tests)."""

    def stat(
        self, key: SeriesKey, test: str, value: float, p_value: float | None, detected: bool
    ) -> None:
        """A test's latest statistic, p-value and state."""

    def window(self, key: SeriesKey, mean: float, n: int) -> None:
        """Mean and size of the series' latest closed window."""

    def version(self, app: str, metric: str, baseline: str, candidate: str, d: MeanDiff) -> None:
        """An A/B readout: candidate − baseline."""

    def drop_series(self, key: SeriesKey) -> None:
        """The series was evicted or expired."""

    def drop_version(self, app: str, baseline: str, candidate: str) -> None:
        """The app's pair was replaced by a newer one."""


class NullExporter:
    """Discards statistics."""

    def stat(
        self, key: SeriesKey, test: str, value: float, p_value: float | None, detected: bool
    ) -> None:
        """Ignore."""

    def window(self, key: SeriesKey, mean: float, n: int) -> None:
        """Ignore."""

    def version(self, app: str, metric: str, baseline: str, candidate: str, d: MeanDiff) -> None:
        """Ignore."""

    def drop_series(self, key: SeriesKey) -> None:
        """Ignore."""

    def drop_version(self, app: str, baseline: str, candidate: str) -> None:
        """Ignore."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """A test changed state on a series: it becomes one drift event."""

    key: SeriesKey
    test: str
    state: Literal["detected", "cleared"]
    at: float
    """Event time: the window end, or the value that fired or cleared an online test."""
    window_start: float
    """Part of the event's idempotency key."""
    statistic: float
    p_value: float | None = None
    threshold: float
    direction: str
    effect: float
    """current − baseline (mean or rate)."""
    current: dict[str, Any]
    baseline: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)


def view(start: float | None, end: float | None, n: int, mean: float) -> dict[str, Any]:
    """A window's description in a finding (NaN mean as null)."""
    return {"start": start, "end": end, "n": n, "mean": None if math.isnan(mean) else mean}


def finding_event(f: Finding, scored_at: float) -> ScoredEvent:
    """The drift event of a finding; its id is stable over (series, test, window, state).

    ``scores`` holds the statistic under the test's name, ``effect`` and
    ``p_value`` (finite values only); ``detail`` the test, threshold, direction
    and both windows. ``trace_id`` names the series: ``drift:app/model/pv/metric``.
    """
    app, model, pv, metric = f.key
    key = f"{app}|{model}|{pv}|{metric}|{f.test}|{f.window_start}|{f.state}"
    scores = {f.test: f.statistic, "effect": f.effect}
    if f.p_value is not None:
        scores["p_value"] = f.p_value
    return ScoredEvent(
        event_id=make_event_id(key, "drift", DRIFT_VERSION),
        trace_id=f"drift:{app}/{model}/{pv}/{metric}",
        type="drift",
        timestamp=f.at,
        scored_at=scored_at,
        scorer_version=DRIFT_VERSION,
        source="drift",
        labels=Labels(app, model, pv, None),
        scores={k: v for k, v in scores.items() if math.isfinite(v)},
        flags=[f"drift_{f.state}"],
        sampled=Sampling(False, []),
        feedback=None,
        detail={
            "state": f.state,
            "test": f.test,
            "metric": metric,
            "threshold": f.threshold if math.isfinite(f.threshold) else None,
            "direction": f.direction,
            "current": f.current,
            "baseline": f.baseline,
            **f.extra,
        },
    )
