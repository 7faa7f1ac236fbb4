"""Prometheus metrics of the OTLP source, read from the assembler's counters at scrape time."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from .assembly import TraceAssembler


class AssemblyCollector(Collector):
    """``rag_sidecar_otlp_*`` gauges and counters of one :class:`TraceAssembler`."""

    def __init__(self, assembler: TraceAssembler, in_flight: Callable[[], int]) -> None:
        self._assembler = assembler
        self._in_flight = in_flight

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        a = self._assembler
        st = a.stats
        for name, doc, value in (
            ("rag_sidecar_otlp_pending_traces", "Traces being assembled from spans.", a.pending),
            ("rag_sidecar_otlp_pending_spans", "Spans of traces being assembled.", a.pending_spans),
            (
                "rag_sidecar_otlp_pending_bytes",
                "Approximate bytes held by pending spans (otlp.assembly.max_pending_bytes).",
                a.pending_bytes,
            ),
            (
                "rag_sidecar_otlp_in_flight",
                "Assembled traces emitted but not yet written.",
                self._in_flight(),
            ),
        ):
            gauge = GaugeMetricFamily(name, doc)
            gauge.add_metric([], value)
            yield gauge
        yield _by(
            "rag_sidecar_otlp_incomplete",
            "Traces given up after the straggler timeout or eviction, by what was missing.",
            "missing",
            a.incomplete,
        )
        yield _by(
            "rag_sidecar_otlp_spans_dropped",
            "Valid spans not kept, by reason: span_limit, duplicate, ignored_scope, "
            "unrouted_annotation, late_retrieval, late_ai, late_other.",
            "reason",
            st.dropped(),
        )
        yield _by(
            "rag_sidecar_otlp_rejected_spans",
            "Spans rejected as malformed (reported to the client as partial success), by reason.",
            "reason",
            st.rejected(),
        )
        for name, doc, value in (
            ("rag_sidecar_otlp_evicted", "Pending traces evicted at a memory cap.", a.evicted),
            ("rag_sidecar_otlp_late_spans", "Spans for traces already closed.", a.late_spans),
            ("rag_sidecar_otlp_spans", "Spans received.", a.spans_seen),
            ("rag_sidecar_otlp_assembled", "Traces assembled and emitted.", a.emitted),
            (
                "rag_sidecar_otlp_not_rag",
                "Traces without any AI span, once otlp.assembly.not_rag_window_s passed.",
                st.traces_not_rag,
            ),
            (
                "rag_sidecar_otlp_reopened",
                "Traces closed as not RAG, reopened by late spans (e.g. another service's).",
                st.traces_reopened,
            ),
        ):
            counter = CounterMetricFamily(name, doc)
            counter.add_metric([], value)
            yield counter


def _by(name: str, doc: str, label: str, values: dict[str, int]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=[label])
    for key, n in sorted(values.items()):
        family.add_metric([key], n)
    return family
