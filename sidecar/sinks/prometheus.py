"""Prometheus sink: scores, flags, feedback and sampling as metrics.

Families (all on an injected :class:`~prometheus_client.CollectorRegistry`):

* ``rag_sidecar_score{app,model,prompt_version,metric}`` — histogram of every
  score in [0, 1] (and retriever similarities, in the retriever's units);
* ``rag_sidecar_count{app,model,prompt_version,metric}`` — histogram of counts
  (answer length in tokens, chunks retrieved);
* ``rag_sidecar_judge_priority_score{app,model,prompt_version,metric}`` — judge
  scores of traces judged *only* for a priority reason (thumbs-down, a low
  retrieval score, a flag, late feedback): bad by selection, so they stay out of
  ``rag_sidecar_score``, whose judge metrics are the random sample's (unbiased);
* ``rag_sidecar_flags_total{app,flag}``;
* ``rag_sidecar_feedback_total{app,model,prompt_version,value}`` (``value`` = up |
  down | rated: votes cast, a changed vote counted again under its new value),
  ``rag_sidecar_feedback_retracted_total{app,model,prompt_version,value}`` (the
  thumbs a changed vote replaced: net votes are total − retracted) and
  ``rag_sidecar_feedback_rating{app,model,prompt_version}``;
* ``rag_sidecar_sampled_total{reason}``.

Label values come from producers, so each label keeps at most
``max_label_values`` distinct values; later ones become ``other`` (and
``rag_sidecar_label_overflow_total{label}`` counts them). Missing labels read
``unknown``. An (app, model, prompt_version) not seen for ``label_ttl_s`` (a
retired prompt version) is retired: its series leave the exposition and its
values free their slots, so a long-running sidecar keeps room for new versions.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram

from ..events import Labels, ScoredEvent
from ..stages import Result
from .histograms import FastHistogram, HistogramFamily

SCORE_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)
COUNT_BUCKETS = (0, 1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000, 2000)
RATING_BUCKETS = (1, 2, 3, 4, 5, 7, 10)
UNKNOWN = "unknown"
OTHER = "other"
_MAX_VALUE_LEN = 120


class LabelLimiter:
    """Caps the distinct values of each producer-supplied label."""

    def __init__(self, max_values: int, overflow: Counter) -> None:
        self.max_values = max_values
        self._seen: dict[str, dict[str, str]] = {}
        self._overflow = overflow

    def __call__(self, label: str, value: str | None) -> str:
        """The value to export for ``label`` (``unknown``, itself, or ``other``)."""
        if not value:
            return UNKNOWN
        seen = self._seen.setdefault(label, {})
        hit = seen.get(value)
        if hit is not None:
            return hit
        if len(seen) >= self.max_values:
            self._overflow.labels(label).inc()
            return OTHER
        mapped = value[:_MAX_VALUE_LEN]
        seen[value] = mapped
        return mapped

    def forget(self, label: str, keep: Iterable[str]) -> None:
        """Free the slots of ``label``'s values whose exported form is not in ``keep``."""
        kept = set(keep)
        seen = self._seen.get(label)
        if seen:
            self._seen[label] = {v: m for v, m in seen.items() if m in kept}


def priority_only(event: ScoredEvent) -> bool:
    """Whether a judge event's trace was selected only by a priority rule (not by the
    random ``rate`` sample, nor as a canary): its scores are biased by that selection."""
    reasons = (event.detail or {}).get("sample_reasons")
    if not isinstance(reasons, list) or not reasons:
        return False
    return "rate" not in reasons and "canary" not in reasons


def retracted(event: ScoredEvent) -> str | None:
    """The thumbs a feedback event's new thumbs replace (a changed vote), if any."""
    if event.feedback is None or event.feedback.thumbs is None or event.detail is None:
        return None
    old = event.detail.get("retracted")
    return old if old in ("up", "down") else None


@dataclass(slots=True)
class _Series:
    """One (app, model, prompt_version) as exported, with its metric children."""

    app: str
    model: str
    pv: str
    histograms: dict[str, FastHistogram] = field(default_factory=dict)
    priority: dict[str, FastHistogram] = field(default_factory=dict)
    flags: dict[str, Counter] = field(default_factory=dict)
    last: float = 0.0
    """When a result last used it (the sink's clock)."""


class PrometheusSink:
    """Updates score metrics for every result; never raises on data."""

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        max_label_values: int = 100,
        metric_kinds: Mapping[str, str] | None = None,
        label_ttl_s: float | None = 86_400.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = "prometheus"
        self.label_ttl_s = label_ttl_s
        self._clock = clock
        self._swept = clock()
        self._kinds = dict(metric_kinds or {})
        series = ("app", "model", "prompt_version", "metric")
        self.score = HistogramFamily(
            "rag_sidecar_score",
            "Scores per trace (ratios in [0,1]; retrieval_* in the retriever's units).",
            series,
            SCORE_BUCKETS,
            registry,
        )
        self.priority = HistogramFamily(
            "rag_sidecar_judge_priority_score",
            "Judge scores of traces judged only for a priority reason (biased by selection).",
            series,
            SCORE_BUCKETS,
            registry,
        )
        self.count = HistogramFamily(
            "rag_sidecar_count",
            "Count-valued scores per trace (answer tokens, chunks retrieved).",
            series,
            COUNT_BUCKETS,
            registry,
        )
        self.flags = Counter(
            "rag_sidecar_flags", "Heuristic flags raised.", ("app", "flag"), registry=registry
        )
        self.feedback = Counter(
            "rag_sidecar_feedback",
            "User feedback seen on traces (value: up, down, rated).",
            ("app", "model", "prompt_version", "value"),
            registry=registry,
        )
        self.retracted = Counter(
            "rag_sidecar_feedback_retracted",
            "Thumbs replaced by a changed vote (net votes: feedback_total minus these).",
            ("app", "model", "prompt_version", "value"),
            registry=registry,
        )
        self.rating = Histogram(
            "rag_sidecar_feedback_rating",
            "User ratings on traces.",
            ("app", "model", "prompt_version"),
            buckets=RATING_BUCKETS,
            registry=registry,
        )
        self.sampled = Counter(
            "rag_sidecar_sampled",
            "Traces selected for the LLM judge, by reason (a trace may have several).",
            ("reason",),
            registry=registry,
        )
        overflow = Counter(
            "rag_sidecar_label_overflow",
            "Label values replaced by 'other' because the label hit its cap.",
            ("label",),
            registry=registry,
        )
        self.limit = LabelLimiter(max_label_values, overflow)
        # Label and child lookups cost more than observations: cache them per label set.
        self._series: dict[tuple[str | None, str | None, str | None], _Series] = {}
        self._exported: dict[tuple[str, str, str], _Series] = {}
        self._sampled: dict[str, Counter] = {}
        self._app_flags: dict[str, set[str]] = {}

    def _series_of(self, labels: Labels) -> _Series:
        """The exported labels and cached children for a trace's (app, model, prompt_version)."""
        key = (labels.app, labels.model, labels.prompt_version)
        series = self._series.get(key)
        if series is not None:
            return series
        limit = self.limit
        exported = (
            limit("app", labels.app),
            limit("model", labels.model),
            limit("prompt_version", labels.prompt_version),
        )
        series = self._exported.get(exported)
        if series is None:
            series = self._exported[exported] = _Series(*exported)
        # An overflowing value goes through the limiter each time, so that every use is counted.
        if OTHER not in exported:
            self._series[key] = series
        return series

    def _histogram(self, series: _Series, metric: str) -> FastHistogram:
        family = self.count if self._kinds.get(metric) == "count" else self.score
        child = series.histograms[metric] = family.labels(
            series.app, series.model, series.pv, metric
        )
        return child

    def _priority_histogram(self, series: _Series, metric: str) -> FastHistogram:
        child = series.priority[metric] = self.priority.labels(
            series.app, series.model, series.pv, metric
        )
        return child

    def _flag(self, series: _Series, flag: str) -> Counter:
        child = series.flags[flag] = self.flags.labels(series.app, flag)
        self._app_flags.setdefault(series.app, set()).add(flag)
        return child

    def _reason(self, reason: str) -> Counter:
        child = self._sampled[reason] = self.sampled.labels(reason)
        return child

    async def start(self) -> None:
        """Nothing to open."""

    async def write(self, results: Sequence[Result]) -> None:
        """Observe every score, flag and feedback of the batch."""
        series_of = self._series_of
        sampled = self._sampled
        now = self._clock()
        ttl = self.label_ttl_s
        if ttl is not None and now - self._swept >= min(ttl / 4, 600.0):
            self._swept = now  # before this batch claims label slots
            self.retire(now - ttl)
        for r in results:
            ev = r.event
            series = series_of(ev.labels)
            series.last = now
            histograms, make = series.histograms, self._histogram
            if ev.type == "judge" and priority_only(ev):
                histograms, make = series.priority, self._priority_histogram
            for metric, value in ev.scores.items():
                hist = histograms.get(metric)
                if hist is None:
                    hist = make(series, metric)
                hist.observe(value)
            if ev.flags:
                flags = series.flags
                for flag in ev.flags:
                    (flags.get(flag) or self._flag(series, flag)).inc()
            fb = ev.feedback
            if fb is not None:
                app, model, pv = series.app, series.model, series.pv
                if fb.thumbs is not None:
                    self.feedback.labels(app, model, pv, fb.thumbs).inc()
                    old = retracted(ev)
                    if old is not None:
                        self.retracted.labels(app, model, pv, old).inc()
                if fb.rating is not None:
                    self.feedback.labels(app, model, pv, "rated").inc()
                    self.rating.labels(app, model, pv).observe(fb.rating)
            for reason in ev.sampled.reasons:  # a closed set: rules and flag names
                (sampled.get(reason) or self._reason(reason)).inc()

    def retire(self, before: float) -> int:
        """Drop every (app, model, prompt_version) last used before ``before``: its series
        and, for values no live series uses, their label slots. Returns how many."""
        stale = [s for s in self._exported.values() if s.last < before]
        if not stale:
            return 0
        for s in stale:
            del self._exported[(s.app, s.model, s.pv)]
            for metric in s.histograms:
                family = self.count if self._kinds.get(metric) == "count" else self.score
                family.remove(s.app, s.model, s.pv, metric)
            for metric in s.priority:
                self.priority.remove(s.app, s.model, s.pv, metric)
            for value in ("up", "down", "rated"):
                with contextlib.suppress(KeyError):
                    self.feedback.remove(s.app, s.model, s.pv, value)
                with contextlib.suppress(KeyError):
                    self.retracted.remove(s.app, s.model, s.pv, value)
            with contextlib.suppress(KeyError):
                self.rating.remove(s.app, s.model, s.pv)
        gone = {id(s) for s in stale}
        self._series = {k: v for k, v in self._series.items() if id(v) not in gone}
        live = list(self._exported.values())
        apps = {s.app for s in live}
        for app in {s.app for s in stale} - apps:  # flags are per app: they go with its last
            for flag in self._app_flags.pop(app, ()):
                with contextlib.suppress(KeyError):
                    self.flags.remove(app, flag)
        self.limit.forget("app", apps)
        self.limit.forget("model", {s.model for s in live})
        self.limit.forget("prompt_version", {s.pv for s in live})
        return len(stale)

    async def flush(self) -> None:
        """Metrics are scraped, nothing to flush."""

    async def aclose(self) -> None:
        """Nothing to release."""
