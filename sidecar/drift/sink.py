"""The drift monitor as a pipeline sink: gauges, drift events, snapshots.

Families (on the injected registry); series labels are app, model,
prompt_version, metric (``thumbs_down`` and ``flag:<name>`` for rates):

* ``rag_sidecar_drift{...,test}`` — latest statistic: ``psi``, ``ks`` (D),
  ``mean_diff`` (Welch t), ``chi2``, ``page_hinkley`` / ``cusum`` (σ units),
  ``version_diff`` (candidate − baseline); ``*_ref``: against the reference;
* ``rag_sidecar_drift_p_value{...,test}`` — where the test has one;
* ``rag_sidecar_drift_detected{...,test}`` — 1 while the test is in alarm;
* ``rag_sidecar_window_mean{...}`` / ``rag_sidecar_window_samples{...}`` — mean
  (a rate for rates) and size of the latest closed window;
* ``rag_sidecar_version_diff{app,metric,baseline,candidate,bound}`` — A/B
  readout, candidate − baseline mean, ``bound`` = estimate | low | high (the
  CI); variants read ``model/prompt_version``;
  ``rag_sidecar_version_samples{app,metric,baseline,candidate,side}`` — n per side;
* ``rag_sidecar_drift_series``, ``rag_sidecar_drift_series_evicted_total``,
  ``rag_sidecar_drift_late_values_total``, ``rag_sidecar_drift_events_total{test,state}``,
  ``rag_sidecar_drift_events_dropped_total``,
  ``rag_sidecar_drift_snapshots_total{outcome}`` (ok, error, restored, restore_error).

Each state change (``detected``/``cleared``) becomes a ``type="drift"`` event
handed to ``emit_events``; events that could not be handed over are retried at
the next write or flush and are kept in the snapshot. ``write`` never raises on
data or on emission failures, so a retried batch is never counted twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge

from ..errors import ConfigError
from ..events import ScoredEvent, loads
from ..sinks.prometheus import LabelLimiter
from ..stages import Result
from . import state
from .detectors import MeanDiff
from .monitor import DriftMonitor
from .outputs import finding_event
from .settings import DriftSettings
from .windows import ReferenceSet, SeriesKey

log = logging.getLogger(__name__)
EmitEvents = Callable[[list[ScoredEvent]], Awaitable[None]]
_SERIES = ("app", "model", "prompt_version", "metric")


class _Gauges:
    """The monitor's :class:`~sidecar.drift.monitor.Exporter`: Prometheus gauges."""

    def __init__(self, registry: CollectorRegistry) -> None:
        tested = (*_SERIES, "test")
        self.value = Gauge(
            "rag_sidecar_drift", "Latest drift statistic.", tested, registry=registry
        )
        self.p = Gauge(
            "rag_sidecar_drift_p_value", "p-value of the drift test.", tested, registry=registry
        )
        self.detected = Gauge(
            "rag_sidecar_drift_detected", "1 while the test is in alarm.", tested, registry=registry
        )
        self.mean = Gauge(
            "rag_sidecar_window_mean",
            "Mean of the latest closed window.",
            _SERIES,
            registry=registry,
        )
        self.n = Gauge(
            "rag_sidecar_window_samples",
            "Values in the latest closed window.",
            _SERIES,
            registry=registry,
        )
        pair = ("app", "metric", "baseline", "candidate")
        self.diff = Gauge(
            "rag_sidecar_version_diff",
            "Candidate minus baseline mean (bound: estimate, low, high).",
            (*pair, "bound"),
            registry=registry,
        )
        self.sides = Gauge(
            "rag_sidecar_version_samples",
            "Values on each side of the A/B readout.",
            (*pair, "side"),
            registry=registry,
        )
        self._tests: dict[SeriesKey, set[str]] = {}
        self._pairs: dict[tuple[str, str, str], set[str]] = {}

    def stat(
        self, key: SeriesKey, test: str, value: float, p_value: float | None, detected: bool
    ) -> None:
        self._tests.setdefault(key, set()).add(test)
        self.value.labels(*key, test).set(value)
        self.detected.labels(*key, test).set(1 if detected else 0)
        if p_value is not None:
            self.p.labels(*key, test).set(p_value)

    def window(self, key: SeriesKey, mean: float, n: int) -> None:
        self._tests.setdefault(key, set())
        self.mean.labels(*key).set(mean)
        self.n.labels(*key).set(n)

    def version(self, app: str, metric: str, baseline: str, candidate: str, d: MeanDiff) -> None:
        self._pairs.setdefault((app, baseline, candidate), set()).add(metric)
        for bound, value in (("estimate", d.estimate), ("low", d.low), ("high", d.high)):
            self.diff.labels(app, metric, baseline, candidate, bound).set(value)
        self.sides.labels(app, metric, baseline, candidate, "baseline").set(d.n_baseline)
        self.sides.labels(app, metric, baseline, candidate, "candidate").set(d.n_candidate)

    def drop_series(self, key: SeriesKey) -> None:
        for test in self._tests.pop(key, set()):
            for family in (self.value, self.p, self.detected):
                with contextlib.suppress(KeyError):
                    family.remove(*key, test)
        for family in (self.mean, self.n):
            with contextlib.suppress(KeyError):
                family.remove(*key)

    def drop_version(self, app: str, baseline: str, candidate: str) -> None:
        for metric in self._pairs.pop((app, baseline, candidate), set()):
            for bound in ("estimate", "low", "high"):
                self.diff.remove(app, metric, baseline, candidate, bound)
            for side in ("baseline", "candidate"):
                self.sides.remove(app, metric, baseline, candidate, side)


class DriftSink:
    """Feeds every result into a :class:`DriftMonitor`; never raises on data."""

    def __init__(
        self,
        settings: DriftSettings,
        registry: CollectorRegistry,
        *,
        clock: Callable[[], float] = time.time,
        emit_events: EmitEvents | None = None,
        limiter: LabelLimiter | None = None,
    ) -> None:
        """``limiter``: pass the Prometheus sink's (``PrometheusSink.limit``) so both
        fold the same label values into ``other``; by default one of its own."""
        self.name = "drift"
        self.settings = settings
        self._clock = clock
        self._emit_events = emit_events
        self.gauges = _Gauges(registry)
        self.monitor = DriftMonitor(settings, self.gauges)
        if limiter is None:
            overflow = Counter(
                "rag_sidecar_drift_label_overflow",
                "Drift label values replaced by 'other'.",
                ("label",),
                registry=registry,
            )
            limiter = LabelLimiter(100, overflow)
        self.limit = limiter
        self.series = Gauge("rag_sidecar_drift_series", "Drift series held.", registry=registry)
        self.evicted = Counter(
            "rag_sidecar_drift_series_evicted",
            "Drift series dropped at the cap.",
            registry=registry,
        )
        self.late = Counter(
            "rag_sidecar_drift_late_values",
            "Values older than the current window.",
            registry=registry,
        )
        self.events = Counter(
            "rag_sidecar_drift_events",
            "Drift events produced.",
            ("test", "state"),
            registry=registry,
        )
        self.dropped = Counter(
            "rag_sidecar_drift_events_dropped",
            "Drift events dropped: emission kept failing.",
            registry=registry,
        )
        self.snapshots = Counter(
            "rag_sidecar_drift_snapshots",
            "Snapshot writes and restores.",
            ("outcome",),
            registry=registry,
        )
        self.pending: list[ScoredEvent] = []
        self._emit_lock = asyncio.Lock()
        self._snapshot_lock = asyncio.Lock()
        self._timer: asyncio.Task[None] | None = None
        self._seen = (0, 0)

    async def start(self) -> None:
        """Load the reference file, restore the snapshot, start the snapshot timer."""
        path = self.settings.reference_path
        if path is not None:
            try:
                self.monitor.store.reference = await asyncio.to_thread(ReferenceSet.load, path)
            except ValueError as exc:
                raise ConfigError(str(exc)) from exc
        snap = self.settings.snapshot_path
        if snap is not None:
            await self._restore(snap)
            self._timer = asyncio.create_task(self._snapshot_loop(), name="drift:snapshot")

    async def _restore(self, path: Path) -> None:
        """Restore the snapshot; a bad one (any error) is renamed ``*.rejected`` and logged."""
        try:
            doc = await asyncio.to_thread(state.read, path)
            if doc is None:
                return
            # events first: restore() ends by exporting the alarms, which must not stay
            # behind if the document is rejected after all
            pending = [loads(orjson.dumps(e)) for e in doc.get("pending_events", [])]
            state.restore(self.monitor, doc)
            self.pending = pending
            self.snapshots.labels("restored").inc()
        except Exception as exc:  # a bad snapshot never stops the start
            self.monitor = DriftMonitor(self.settings, self.gauges, self.monitor.store.reference)
            self.snapshots.labels("restore_error").inc()
            kept = await asyncio.to_thread(state.set_aside, path)
            error = f"{type(exc).__name__}: {exc}"
            log.warning(
                "drift state not restored; starting fresh",
                extra={"fields": {"path": str(path), "kept_as": kept, "error": error}},
            )

    async def write(self, results: Sequence[Result]) -> None:
        """Observe every result's scores, flags and feedback; emit drift events."""
        now = self._clock()
        limit = self.limit
        observe = self.monitor.observe
        for r in results:
            ev = r.event
            lb = ev.labels
            observe(
                ev,
                limit("app", lb.app),
                limit("model", lb.model),
                limit("prompt_version", lb.prompt_version),
                now,
            )
        self._after(now)
        await self._emit()

    def _after(self, now: float) -> None:
        m = self.monitor
        m.end_batch(now)
        store = m.store
        evicted, late = self._seen
        if store.evicted > evicted:
            self.evicted.inc(store.evicted - evicted)
        if store.late > late:
            self.late.inc(store.late - late)
        self._seen = (store.evicted, store.late)
        self.series.set(len(store.series))
        findings = m.take_findings()
        if findings:
            for f in findings:
                self.events.labels(f.test, f.state).inc()
            self.pending.extend(finding_event(f, now) for f in findings)
            excess = len(self.pending) - self.settings.max_pending_events
            if excess > 0:
                del self.pending[:excess]
                self.dropped.inc(excess)

    async def _emit(self) -> None:
        if not self.pending:
            return
        if self._emit_events is None:
            self.pending.clear()
            return
        async with self._emit_lock:
            batch = list(self.pending)
            if not batch:
                return
            try:
                await self._emit_events(batch)
            except Exception as exc:
                log.warning(
                    "drift events not emitted; will retry",
                    extra={"fields": {"pending": len(batch), "error": str(exc)}},
                )
                return
            sent = {id(e) for e in batch}
            self.pending = [e for e in self.pending if id(e) not in sent]

    async def snapshot(self) -> None:
        """Write the state file now (no-op without ``snapshot_path``); one write at a time
        (the timer and a flush share the temporary file)."""
        path = self.settings.snapshot_path
        if path is None:
            return
        async with self._snapshot_lock:
            doc = state.snapshot(
                self.monitor, saved_at=self._clock(), pending=[e.to_dict() for e in self.pending]
            )
            try:
                await asyncio.to_thread(state.write_atomic, path, state.dumps(doc))
                self.snapshots.labels("ok").inc()
            except Exception as exc:  # a failed snapshot must not stop the sidecar
                self.snapshots.labels("error").inc()
                error = f"{type(exc).__name__}: {exc}"
                log.warning(
                    "drift snapshot failed", extra={"fields": {"path": str(path), "error": error}}
                )

    async def _snapshot_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.snapshot_interval_s)
            await self.snapshot()

    async def flush(self) -> None:
        """Hand pending drift events over and write the snapshot."""
        await self._emit()
        await self.snapshot()

    async def aclose(self) -> None:
        """Stop the timer, emit what is pending, write a last snapshot."""
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
            self._timer = None
        await self.flush()
