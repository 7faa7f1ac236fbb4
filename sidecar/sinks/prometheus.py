"""Prometheus sink: scores, flags, feedback and sampling as metrics.

Families (all on an injected :class:`~prometheus_client.CollectorRegistry`):

* ``rag_sidecar_score{app,model,prompt_version,metric}`` — histogram of every
  score in [0, 1] (and retriever similarities, in the retriever's units);
* ``rag_sidecar_count{app,model,prompt_version,metric}`` — histogram of counts
  (answer length in tokens, chunks retrieved);
* ``rag_sidecar_flags_total{app,flag}``;
* ``rag_sidecar_feedback_total{app,model,value}`` (``value`` = up | down | rated)
  and ``rag_sidecar_feedback_rating{app,model}`` (histogram of ratings);
* ``rag_sidecar_sampled_total{reason}``.

Label values come from producers, so each label keeps at most
``max_label_values`` distinct values; later ones become ``other`` (and
``rag_sidecar_label_overflow_total{label}`` counts them). Missing labels read
``unknown``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram

from ..events import Labels
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


@dataclass(slots=True)
class _Series:
    """One (app, model, prompt_version) as exported, with its metric children."""

    app: str
    model: str
    pv: str
    histograms: dict[str, FastHistogram] = field(default_factory=dict)
    flags: dict[str, Counter] = field(default_factory=dict)


class PrometheusSink:
    """Updates score metrics for every result; never raises on data."""

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        max_label_values: int = 100,
        metric_kinds: Mapping[str, str] | None = None,
    ) -> None:
        self.name = "prometheus"
        self._kinds = dict(metric_kinds or {})
        series = ("app", "model", "prompt_version", "metric")
        self.score = HistogramFamily(
            "rag_sidecar_score",
            "Scores per trace (ratios in [0,1]; retrieval_* in the retriever's units).",
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

    def _flag(self, series: _Series, flag: str) -> Counter:
        child = series.flags[flag] = self.flags.labels(series.app, flag)
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
        for r in results:
            ev = r.event
            series = series_of(ev.labels)
            histograms = series.histograms
            for metric, value in ev.scores.items():
                hist = histograms.get(metric)
                if hist is None:
                    hist = self._histogram(series, metric)
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
                if fb.rating is not None:
                    self.feedback.labels(app, model, pv, "rated").inc()
                    self.rating.labels(app, model, pv).observe(fb.rating)
            for reason in ev.sampled.reasons:  # a closed set: rules and flag names
                (sampled.get(reason) or self._reason(reason)).inc()

    async def flush(self) -> None:
        """Metrics are scraped, nothing to flush."""

    async def aclose(self) -> None:
        """Nothing to release."""
