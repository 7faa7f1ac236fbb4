"""Snapshot and restore of the drift state, so a restart does not reset baselines.

The snapshot is one JSON document (``format: rag-sidecar-drift-state``,
``version: 1``) written atomically (temporary file in the same directory,
fsync, rename, fsync of the directory): a crash leaves the old file or the new
one, never half of one. It holds, per series, the current (partial) window,
the trailing baseline ring, the window-test states, the online detectors'
state (burn-in progress, reference mean/std, PH/CUSUM sums) and online alarms
in their hold period; plus the shared window clock, the app → variants table
and A/B pairs, and drift events not yet emitted. Kept: everything above, so a
restart continues the same window. Lost: values scored after the last
snapshot (≤ ``snapshot_interval_s``; at-least-once redelivery then counts a
replayed batch again), the reference file (re-read from its path), gauges
(republished as windows close) and the eviction counters. A snapshot taken
with other ``bins``, ``window_s`` or ``baseline_slot_s`` is refused
(:class:`StateMismatch`): the sidecar starts fresh rather than mixing layouts.
So is one with a series that could not be used (a key without four labels, an
unknown kind, histograms of the wrong size, a window start that is no number).

Replicas: each one snapshots its own file (e.g. a path with the pod name).
:func:`merge` combines several: histograms add (same window, same slot), test
states OR, hold periods take the latest end. Online detector state is per
replica and not additive — merge keeps the first replica's and the others
relearn after their burn-in.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson

from .detectors import Histogram
from .monitor import VERSION_DIFF, DriftMonitor
from .windows import REFERENCE_FORMAT, Series, SeriesKey

FORMAT = "rag-sidecar-drift-state"
VERSION = 1


class StateMismatch(ValueError):
    """The snapshot cannot be restored into these settings."""


def _layout(monitor: DriftMonitor) -> dict[str, float]:
    s = monitor.settings
    return {"bins": s.bins, "window_s": s.window_s, "baseline_slot_s": s.baseline_slot_s}


def _series_json(series: Series) -> dict[str, Any]:
    return {
        "key": list(series.key),
        "kind": series.kind,
        "last_seen": series.last_seen,
        "current": series.current.to_json(),
        "slots": [[start, hist.to_json()] for start, hist in series.slots],
        "detected": {k: v for k, v in series.detected.items() if v},
        "alarm_until": dict(series.alarm_until),
        "online": {name: det.to_json() for name, det in series.online.items()},
    }


def snapshot(
    monitor: DriftMonitor, *, saved_at: float, pending: Sequence[dict[str, Any]] = ()
) -> dict[str, Any]:
    """The whole state as a JSON-ready document (series in LRU order, oldest first)."""
    store = monitor.store
    return {
        "format": FORMAT,
        "version": VERSION,
        "saved_at": saved_at,
        "layout": _layout(monitor),
        "window_start": store.window_start,
        "series": [_series_json(s) for s in store.series.values()],
        "versions": monitor.versions.to_json(),
        "pending_events": list(pending),
    }


def _check(doc: dict[str, Any]) -> None:
    if doc.get("format") != FORMAT or doc.get("version") != VERSION:
        raise StateMismatch(f"not a {FORMAT} version {VERSION} document")


def _hist(doc: Any, bins: int) -> Histogram:
    hist = Histogram.from_json(doc)
    if hist.bins != bins:
        raise StateMismatch(f"a histogram of {hist.bins} bins where {bins} belong")
    return hist


def restore(monitor: DriftMonitor, doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Load ``doc`` into a fresh monitor; returns the pending drift events it held.

    Raises (ValueError, KeyError, TypeError, AttributeError…) on a malformed document,
    leaving the monitor half-loaded: the caller starts a fresh one.
    """
    _check(doc)
    if doc.get("layout") != _layout(monitor):
        raise StateMismatch(f"snapshot layout {doc.get('layout')} != {_layout(monitor)}")
    store = monitor.store
    start = doc["window_start"]
    if start is not None and not math.isfinite(float(start)):
        raise StateMismatch(f"window_start {start!r} is not a time")
    store.window_start = None if start is None else float(start)
    items = doc["series"][-store.max_series :]
    for item in items:
        key: SeriesKey = tuple(str(part) for part in item["key"])  # type: ignore[assignment]
        kind = item["kind"]
        if len(key) != 4 or kind not in ("score", "rate"):
            raise StateMismatch(f"series {item['key']!r} of kind {kind!r}")
        bins = monitor.settings.bins if kind == "score" else 2
        series = store.get(key, kind, float(item["last_seen"]))
        series.current = _hist(item["current"], bins)
        for slot_start, hist in item["slots"]:
            series.slots.append((float(slot_start), _hist(hist, bins)))
        series.detected = {str(k): bool(v) for k, v in item["detected"].items()}
        series.alarm_until = {str(k): float(v) for k, v in item["alarm_until"].items()}
        if series.kind == "score":
            series.online = monitor.make_online()
            for name, state in item["online"].items():
                if name in series.online:
                    series.online[name].restore(state)
    monitor.versions.restore(doc.get("versions", {}))
    _republish(monitor)
    return list(doc.get("pending_events", []))


def _republish(monitor: DriftMonitor) -> None:
    """Export the restored alarms now: otherwise their gauges are missing until the next
    window closes, and every rolling deploy would resolve and re-fire the drift alerts."""
    stat = monitor.exporter.stat
    for series in monitor.store.series.values():
        for test, on in series.detected.items():
            if on and test != VERSION_DIFF:  # the version readout below re-exports its own
                stat(series.key, test, math.nan, None, True)
        for test in series.alarm_until:
            det = series.online.get(test)
            stat(series.key, test, det.statistic if det is not None else math.nan, None, True)
    monitor.readouts(evaluate=True)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically (temp file + fsync + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    with contextlib.suppress(OSError):  # not every file system lets a directory be fsynced
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def set_aside(path: Path) -> str | None:
    """Rename a snapshot that could not be restored to ``<name>.rejected`` (kept for a look,
    not overwritten by the next snapshot); its new path, or None if it could not be moved."""
    aside = path.with_name(path.name + ".rejected")
    try:
        path.replace(aside)
    except OSError:
        return None
    return str(aside)


def dumps(doc: dict[str, Any]) -> bytes:
    """Serialise a state or reference document (non-finite floats become null)."""
    return orjson.dumps(doc)


def read(path: Path) -> dict[str, Any] | None:
    """A state document from ``path``; None when the file does not exist."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    doc = orjson.loads(data)
    if not isinstance(doc, dict):
        raise StateMismatch(f"{path} does not hold a JSON object")
    return doc


def _merge_series(into: dict[str, Any], item: dict[str, Any], current: bool, slot: float) -> None:
    hists: dict[float, Histogram] = into["_slots"]
    cur = Histogram.from_json(item["current"])
    if current:
        into["_current"].merge(cur)
    elif cur.n:  # the replica's partial window is older than the merged one: a baseline slot
        hists.setdefault(slot, Histogram(cur.bins)).merge(cur)
    for start, hist in item["slots"]:
        h = Histogram.from_json(hist)
        hists.setdefault(float(start), Histogram(h.bins)).merge(h)
    into["last_seen"] = max(into["last_seen"], item["last_seen"])
    for test, on in item["detected"].items():
        into["detected"][test] = into["detected"].get(test, False) or bool(on)
    for test, until in item["alarm_until"].items():
        into["alarm_until"][test] = max(until, into["alarm_until"].get(test, until))


def _merge_versions(docs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    variants: dict[str, dict[tuple[str, str], float]] = {}
    pairs: dict[str, Any] = {}
    for doc in docs:
        v = doc.get("versions", {})
        for app, items in v.get("variants", {}).items():
            known = variants.setdefault(app, {})
            for m, pv, ts in items:
                known[(m, pv)] = max(ts, known.get((m, pv), ts))
        for app, pair in v.get("pairs", {}).items():
            if app not in pairs or pair[2] > pairs[app][2]:
                pairs[app] = pair
    return {
        "variants": {
            app: [[m, pv, ts] for (m, pv), ts in sorted(known.items(), key=lambda kv: kv[1])]
            for app, known in variants.items()
        },
        "pairs": pairs,
    }


def merge(docs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Combine the snapshots of several replicas into one (same layout required)."""
    if not docs:
        raise ValueError("nothing to merge")
    for doc in docs:
        _check(doc)
        if doc["layout"] != docs[0]["layout"]:
            raise StateMismatch("replica snapshots have different layouts")
    starts = [d["window_start"] for d in docs if d["window_start"] is not None]
    window_start = max(starts) if starts else None
    slot_s = float(docs[0]["layout"]["baseline_slot_s"])
    merged: dict[tuple[str, ...], dict[str, Any]] = {}
    for doc in docs:
        ws = doc["window_start"]
        slot = math.floor(ws / slot_s) * slot_s if ws is not None else 0.0
        for item in doc["series"]:
            into = merged.get(tuple(item["key"]))
            if into is None:
                bins = len(item["current"]["counts"])
                into = merged[tuple(item["key"])] = {
                    **item,
                    "detected": {},
                    "alarm_until": {},
                    "_current": Histogram(bins),
                    "_slots": {},
                }
            _merge_series(into, item, ws == window_start, slot)
    series = []
    for into in sorted(merged.values(), key=lambda i: float(i["last_seen"])):
        into["current"] = into.pop("_current").to_json()
        slots = sorted(into.pop("_slots").items())
        into["slots"] = [[start, hist.to_json()] for start, hist in slots]
        series.append(into)
    pending = {e.get("event_id"): e for d in docs for e in d.get("pending_events", [])}
    return {
        **docs[0],
        "window_start": window_start,
        "series": series,
        "versions": _merge_versions(docs),
        "pending_events": list(pending.values()),
    }


def reference_from_snapshot(
    doc: dict[str, Any], *, metrics: Iterable[str] | None = None
) -> dict[str, Any]:
    """A reference-file document from a snapshot: each series' trailing ring + current window.

    The hook for a CLI command that freezes "the last day" as the reference.
    """
    _check(doc)
    wanted = set(metrics) if metrics is not None else None
    entries = []
    for item in doc["series"]:
        app, model, pv, metric = item["key"]
        if wanted is not None and metric not in wanted:
            continue
        hist = Histogram.from_json(item["current"])
        for _, slot in item["slots"]:
            hist.merge(Histogram.from_json(slot))
        if hist.n:
            entries.append(
                {
                    "app": app,
                    "model": model,
                    "prompt_version": pv,
                    "metric": metric,
                    "hist": hist.to_json(),
                }
            )
    return {"format": REFERENCE_FORMAT, "version": 1, "series": entries}
