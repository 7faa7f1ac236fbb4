"""The drift monitor: feeds events into series, runs the tests, reports findings.

Synchronous and free of I/O: :class:`~sidecar.drift.sink.DriftSink` wraps it
for the pipeline, benches and tests drive it directly. Statistics go to an
:class:`Exporter` (gauges in production); state changes become
:class:`Finding` s (drift events), both *detected* and *cleared*:

* window tests (``psi``, ``ks``, ``mean_diff`` for scores, ``chi2`` for rates,
  and ``*_ref`` against the frozen reference) run when a window closes; a test
  is cleared by a later window that evaluates without alarm (a window below the
  minimum sample size leaves the state as it was);
* online tests (``page_hinkley``, ``cusum``) run on every score value; an alarm
  stays detected for ``online.hold_s`` of event time, then clears;
* ``version_diff``: at each window close, candidate − baseline per series; it
  alarms when p < ``versions.alpha``, |diff| ≥ ``min_effect`` and both sides
  have ``min_samples`` (only at window closes, to limit repeated peeking).
"""

from __future__ import annotations

import math
from typing import Any

from ..events import ScoredEvent
from .detectors import Histogram, MeanDiff, mean_diff_ci, window_tests
from .online import Alarm, Cusum, OnlineDetector, PageHinkley
from .outputs import Exporter, Finding, NullExporter, view
from .settings import DriftSettings
from .versions import Variant, VersionTracker, variant_name
from .windows import ClosedWindow, ReferenceSet, Series, SeriesKey, SeriesKind, WindowStore

THUMBS_DOWN = "thumbs_down"
FLAG_PREFIX = "flag:"
VERSION_DIFF = "version_diff"


class DriftMonitor:
    """All drift state of one process."""

    def __init__(
        self,
        settings: DriftSettings,
        exporter: Exporter | None = None,
        reference: ReferenceSet | None = None,
    ) -> None:
        self.settings = settings
        self.exporter: Exporter = exporter or NullExporter()
        self.store = WindowStore(
            bins=settings.bins,
            window_s=settings.window_s,
            slot_s=settings.baseline_slot_s,
            slots=settings.baseline_slots,
            max_series=settings.max_series,
            idle_s=settings.idle_s,
            reference=reference,
        )
        self.versions = VersionTracker(settings.versions.max_variants)
        self._metrics = frozenset(settings.metrics)
        self._flags_h = tuple((f, FLAG_PREFIX + f) for f in settings.flags if not _judge(f))
        self._flags_j = tuple((f, FLAG_PREFIX + f) for f in settings.flags if _judge(f))
        self._all_metrics = [*settings.metrics, *(m for _, m in self._flags_h + self._flags_j)]
        if settings.thumbs_down:
            self._all_metrics.append(THUMBS_DOWN)
        self._findings: list[Finding] = []
        self._dirty: dict[SeriesKey, Series] = {}
        self._last_readout = -math.inf
        self._n_online = len(set(settings.online.detectors))

    def make_online(self) -> dict[str, OnlineDetector]:
        """Fresh online detectors for a new score series, as configured."""
        o = self.settings.online
        kw: dict[str, Any] = {
            "burn_in": o.burn_in,
            "direction": o.direction,
            "z_clip": o.z_clip,
            "min_std": o.min_std,
        }
        out: dict[str, OnlineDetector] = {}
        for name in o.detectors:
            if name == "page_hinkley":
                out[name] = PageHinkley(threshold=o.ph_lambda, drift=o.ph_delta, **kw)
            else:
                out[name] = Cusum(threshold=o.cusum_h, drift=o.cusum_k, **kw)
        return out

    # ------------------------------------------------------------------ input

    def observe(self, event: ScoredEvent, app: str, model: str, pv: str, now: float) -> None:
        """Feed one event (labels already capped): heuristic, judge and embedding scores; flags
        of heuristic and judge events; thumbs of heuristic events. Other events are ignored."""
        kind = event.type
        if kind != "heuristic" and kind != "judge" and kind != "embedding":
            return
        ts = event.timestamp
        if not math.isfinite(ts) or ts > now + self.settings.max_future_s:
            ts = now
        if self.store.due(ts):
            self._roll(ts)
        if self.settings.versions.enabled:
            old = self.versions.pairs.get(app)
            if self.versions.seen(app, (model, pv), ts) is not None:
                self._new_pair(app, old)
        metrics = self._metrics
        for metric, value in event.scores.items():
            if metric in metrics and math.isfinite(value):  # NaN and ±inf are no score
                self._value((app, model, pv, metric), "score", value, ts)
        flags = self._flags_h if kind == "heuristic" else self._flags_j if kind == "judge" else ()
        if flags:
            raised = event.flags
            for name, metric in flags:
                self._value((app, model, pv, metric), "rate", float(name in raised), ts)
        fb = event.feedback
        if fb is not None and fb.thumbs is not None and self.settings.thumbs_down:
            self._value((app, model, pv, THUMBS_DOWN), "rate", float(fb.thumbs == "down"), ts)

    def _value(self, key: SeriesKey, kind: SeriesKind, value: float, ts: float) -> None:
        series = self.store.get(key, kind, ts)
        value = 0.0 if value < 0.0 else 1.0 if value > 1.0 else value
        self.store.add(series, value, ts)
        if series.alarm_until:
            self._expire(series, ts)
        if kind == "score":
            if len(series.online) != self._n_online:
                series.online = self.make_online()
            for det in series.online.values():
                alarm = det.update(value)
                if alarm is not None:
                    self._alarm(series, alarm, ts)
            self._dirty[key] = series

    def end_batch(self, now: float) -> None:
        """Publish online statistics of the series touched, and A/B readouts when due."""
        self._drop()
        export = self.exporter.stat
        for key, series in self._dirty.items():
            for name, det in series.online.items():
                export(key, name, det.statistic, None, name in series.alarm_until)
        self._dirty.clear()
        if now - self._last_readout >= self.settings.versions.refresh_s:
            self._last_readout = now
            self.readouts(evaluate=False)

    def take_findings(self) -> list[Finding]:
        """Findings since the last call, oldest first."""
        out, self._findings = self._findings, []
        return out

    # ------------------------------------------------------------------ online

    def _alarm(self, series: Series, alarm: Alarm, ts: float) -> None:
        series.alarm_until[alarm.test] = ts + self.settings.online.hold_s
        self.exporter.stat(series.key, alarm.test, alarm.statistic, None, True)
        cur = series.current
        self._findings.append(
            Finding(
                key=series.key,
                test=alarm.test,
                state="detected",
                at=ts,
                window_start=ts,
                statistic=alarm.statistic,
                threshold=alarm.threshold,
                direction=alarm.direction,
                effect=cur.mean - alarm.reference_mean if cur.n else math.nan,
                current=view(self.store.window_start, ts, cur.n, cur.mean),
                baseline={
                    "kind": "online",
                    "mean": alarm.reference_mean,
                    "std": alarm.reference_std,
                },
                extra={"samples_since_reference": alarm.samples},
            )
        )

    def _expire(self, series: Series, ts: float) -> None:
        for test, until in list(series.alarm_until.items()):
            if ts < until:
                continue
            del series.alarm_until[test]
            det = series.online.get(test)
            start = until - self.settings.online.hold_s
            self._cleared(
                series.key,
                test,
                at=ts,
                window_start=start,
                statistic=det.statistic if det is not None else 0.0,
                threshold=det.threshold if det is not None else math.nan,
                current=view(start, ts, 0, math.nan),
                baseline={"kind": "online"},
            )

    def _cleared(
        self,
        key: SeriesKey,
        test: str,
        *,
        at: float,
        window_start: float,
        statistic: float,
        threshold: float,
        current: dict[str, Any],
        baseline: dict[str, Any],
        extra: dict[str, Any] | None = None,
    ) -> None:
        """Export ``test`` as no longer detected on ``key`` and record the clearing."""
        self.exporter.stat(key, test, statistic, None, False)
        self._findings.append(
            Finding(
                key=key,
                test=test,
                state="cleared",
                at=at,
                window_start=window_start,
                statistic=statistic,
                threshold=threshold,
                direction="none",
                effect=0.0,
                current=current,
                baseline=baseline,
                extra=extra or {},
            )
        )

    # ------------------------------------------------------------------ windows

    def _roll(self, ts: float) -> None:
        for closed in self.store.roll(ts):
            self._evaluate(closed)
        self._drop()
        quiet_before = self._quiet_before()
        for series in self.store.series.values():
            if series.alarm_until:
                self._expire(series, ts)
            if series.last_seen < quiet_before and any(series.detected.values()):
                self._clear_quiet(series)
        self.readouts(evaluate=True)

    def _quiet_before(self) -> float:
        """A series without a value since this time is quiet (``quiet_s``, a window at least)."""
        start = self.store.window_start
        quiet = max(self.settings.quiet_s, self.store.window_s)
        return -math.inf if start is None else start - quiet

    def _clear_quiet(self, series: Series) -> None:
        """A series that stopped (a rollback, a retired version, an idle app) is no longer
        drifting: its alarms clear now, not when it expires after ``idle_s`` (two days)."""
        start = self.store.window_start or 0.0
        for test, on in list(series.detected.items()):
            if not on:
                continue
            series.detected[test] = False
            self._cleared(
                series.key,
                test,
                at=start,
                window_start=start,
                statistic=0.0,
                threshold=math.nan,
                current=view(series.last_seen, start, 0, math.nan),
                baseline={"kind": "none"},
                extra={"reason": "no_traffic"},
            )

    def _drop(self) -> None:
        for series in self.store.take_dropped():
            self.exporter.drop_series(series.key)
            self._dirty.pop(series.key, None)

    def _evaluate(self, cw: ClosedWindow) -> None:
        series = cw.series
        key = series.key
        self.exporter.window(key, cw.current.mean, cw.current.n)
        bases: list[tuple[str, str, Histogram, float | None]] = [
            ("", "trailing", cw.trailing, cw.start - self.store.baseline_s)
        ]
        if series.reference is not None:
            bases.append(("_ref", "reference", series.reference, None))
        for suffix, kind, base, b_start in bases:
            for r in window_tests(series.kind, base, cw.current, self.settings.tests):
                name = r.test + suffix
                if not r.evaluated:
                    continue
                self.exporter.stat(key, name, r.statistic, r.p_value, r.detected)
                if r.detected == series.detected.get(name, False):
                    continue
                series.detected[name] = r.detected
                self._findings.append(
                    Finding(
                        key=key,
                        test=name,
                        state="detected" if r.detected else "cleared",
                        at=cw.end,
                        window_start=cw.start,
                        statistic=r.statistic,
                        p_value=r.p_value,
                        threshold=r.threshold,
                        direction=r.direction,
                        effect=r.effect,
                        current=view(cw.start, cw.end, cw.current.n, cw.current.mean),
                        baseline={"kind": kind, **view(b_start, cw.start, base.n, base.mean)},
                    )
                )

    # ------------------------------------------------------------------ versions

    def _pair_keys(self, app: str, variant: Variant) -> list[tuple[str, SeriesKey]]:
        return [(m, (app, *variant, m)) for m in self._all_metrics]

    def _new_pair(self, app: str, old: tuple[Variant, Variant, float] | None) -> None:
        if old is not None:
            ob, oc, _ = old
            self.exporter.drop_version(app, variant_name(ob), variant_name(oc))
            start = self.store.window_start or 0.0
            for _, key in self._pair_keys(app, oc):
                series = self.store.series.get(key)
                if series is None or not series.detected.pop(VERSION_DIFF, False):
                    continue
                self._cleared(
                    key,
                    VERSION_DIFF,
                    at=start,
                    window_start=start,
                    statistic=0.0,
                    threshold=self.settings.versions.alpha,
                    current={"variant": variant_name(oc)},
                    baseline={"kind": "version", "variant": variant_name(ob)},
                    extra={"reason": "replaced"},
                )
        # The readout gauges of the new pair are published by the next periodic refresh
        # (versions.refresh_s): computing CIs here, per event, made variant churn costly.

    def readouts(self, *, evaluate: bool, only: str | None = None) -> None:
        """Publish the A/B readout of each app's version pair; with ``evaluate``, judge it."""
        v = self.settings.versions
        if not v.enabled:
            return
        quiet_before = self._quiet_before()
        for app, (b, c, _since) in self.versions.pairs.items():
            if only is not None and app != only:
                continue
            bname, cname = variant_name(b), variant_name(c)
            live = [
                (metric, ckey)
                for metric, ckey in self._pair_keys(app, c)
                if (cs := self.store.series.get(ckey)) is not None and cs.last_seen >= quiet_before
            ]
            if not live:  # the candidate serves no traffic (rolled back): no readout
                self.exporter.drop_version(app, bname, cname)
                continue
            for metric, ckey in live:
                base = self.store.recent((app, *b, metric))
                cand = self.store.recent(ckey)
                d = None if base is None or cand is None else mean_diff_ci(base, cand, v.level)
                if d is None:
                    continue
                self.exporter.version(app, metric, bname, cname, d)
                if evaluate:
                    self._judge_pair(ckey, bname, cname, d)

    def _judge_pair(self, key: SeriesKey, bname: str, cname: str, d: MeanDiff) -> None:
        v = self.settings.versions
        series = self.store.series.get(key)
        if series is None or min(d.n_baseline, d.n_candidate) < v.min_samples:
            return
        hit = d.p_value < v.alpha and abs(d.estimate) >= v.min_effect
        self.exporter.stat(key, VERSION_DIFF, d.estimate, d.p_value, hit)
        if hit == series.detected.get(VERSION_DIFF, False):
            return
        series.detected[VERSION_DIFF] = hit
        start = self.store.window_start or 0.0
        self._findings.append(
            Finding(
                key=key,
                test=VERSION_DIFF,
                state="detected" if hit else "cleared",
                at=start,
                window_start=start,
                statistic=d.estimate,
                p_value=d.p_value,
                threshold=v.alpha,
                direction="down" if d.estimate < 0 else "up",
                effect=d.estimate,
                current={"variant": cname, "n": d.n_candidate, "mean": d.candidate_mean},
                baseline={
                    "kind": "version",
                    "variant": bname,
                    "n": d.n_baseline,
                    "mean": d.baseline_mean,
                },
                extra={"low": d.low, "high": d.high, "level": v.level},
            )
        )


def _judge(flag: str) -> bool:
    return flag.startswith("judge_")
