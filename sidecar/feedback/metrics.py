"""The joiner's Prometheus families.

* ``rag_sidecar_feedback_joined_total{order}`` — joined to a scored trace:
  ``trace_first`` (the usual case) or ``feedback_first`` (it waited for its trace);
* ``rag_sidecar_feedback_unjoined_total{reason}`` — emitted with ``joined: false``:
  ``unknown_trace`` (no trace within the window: never scored here, scored before
  a restart, evicted, or routed to another replica), ``buffer_full``, ``shutdown``;
* ``rag_sidecar_feedback_duplicates_total{kind}`` — ``identical`` (same thumbs,
  rating and comment: no new event) or ``updated`` (last write wins: a new event);
* ``rag_sidecar_time_to_feedback_seconds{app}`` — feedback time − trace time (per-app
  series, like ``rag_sidecar_feedback_agreement``, retire after ``http.label_ttl_s`` unused);
* ``rag_sidecar_feedback_judge_offers_total{outcome}`` — late thumbs-down:
  ``accepted`` / ``refused`` by the judge, ``already_judged``, ``already_sampled``,
  ``no_trace`` (the full trace is no longer kept);
* ``rag_sidecar_feedback_write_failed_total`` — events the sinks refused for good;
* gauges ``rag_sidecar_feedback_store_traces``, ``rag_sidecar_feedback_store_bodies``,
  ``rag_sidecar_feedback_pending``, ``rag_sidecar_feedback_store_bytes{part}``
  (``entries``, ``bodies``, ``pending``) and the counter
  ``rag_sidecar_feedback_store_evicted_total{part,reason}``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from ..sinks.prometheus import LabelLimiter
from .pending import PendingFeedback
from .store import TraceStore

TTF_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 900, 1800, 3600, 7200, 21600, 86400)


class _StoreCollector(Collector):
    def __init__(self, store: TraceStore, pending: PendingFeedback) -> None:
        self._store = store
        self._pending = pending

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        st, pend = self._store, self._pending
        for name, doc, value in (
            ("rag_sidecar_feedback_store_traces", "Scored traces kept for feedback.", len(st)),
            (
                "rag_sidecar_feedback_store_bodies",
                "Kept traces still holding their full trace (judgeable).",
                st.bodies,
            ),
            (
                "rag_sidecar_feedback_pending",
                "Feedback records waiting for their trace.",
                len(pend),
            ),
        ):
            gauge = GaugeMetricFamily(name, doc)
            gauge.add_metric([], value)
            yield gauge
        size = GaugeMetricFamily(
            "rag_sidecar_feedback_store_bytes",
            "Approximate bytes held by the feedback joiner (part: entries, bodies, pending).",
            labels=["part"],
        )
        size.add_metric(["entries"], st.bytes)
        size.add_metric(["bodies"], st.body_bytes)
        size.add_metric(["pending"], pend.bytes)
        yield size
        evicted = CounterMetricFamily(
            "rag_sidecar_feedback_store_evicted",
            "Kept traces (part=entry) or their full traces (part=body) dropped, by reason.",
            labels=["part", "reason"],
        )
        for (part, reason), n in sorted(st.evicted.items()):
            evicted.add_metric([part, reason], n)
        yield evicted


class FeedbackMetrics:
    """Counters and histograms of the feedback joiner."""

    def __init__(
        self, registry: CollectorRegistry, store: TraceStore, pending: PendingFeedback
    ) -> None:
        self.joined = Counter(
            "rag_sidecar_feedback_joined",
            "Feedback records joined to their trace (order: trace_first, feedback_first).",
            ("order",),
            registry=registry,
        )
        self.unjoined = Counter(
            "rag_sidecar_feedback_unjoined",
            "Feedback records emitted without their trace, by reason.",
            ("reason",),
            registry=registry,
        )
        self.duplicates = Counter(
            "rag_sidecar_feedback_duplicates",
            "Repeated feedback for a trace (kind: identical, updated).",
            ("kind",),
            registry=registry,
        )
        self.time_to_feedback = Histogram(
            "rag_sidecar_time_to_feedback_seconds",
            "Seconds from the trace to its user feedback (joined feedback).",
            ("app",),
            buckets=TTF_BUCKETS,
            registry=registry,
        )
        self.judge_offers = Counter(
            "rag_sidecar_feedback_judge_offers",
            "Late thumbs-down traces considered for the judge, by outcome.",
            ("outcome",),
            registry=registry,
        )
        self.write_failed = Counter(
            "rag_sidecar_feedback_write_failed",
            "Feedback events not written (a sink failed permanently).",
            registry=registry,
        )
        registry.register(_StoreCollector(store, pending))

    def forget(self, app: str) -> None:
        """Retire an app's series."""
        with contextlib.suppress(KeyError):
            self.time_to_feedback.remove(app)

    @staticmethod
    def limiter(registry: CollectorRegistry, max_apps: int) -> LabelLimiter:
        """An app label limiter of the joiner's own (when not sharing the Prometheus sink's)."""
        overflow = Counter(
            "rag_sidecar_feedback_label_overflow",
            "App values folded into 'other' in the feedback metrics.",
            ("label",),
            registry=registry,
        )
        return LabelLimiter(max_apps, overflow)
