"""Scores back into the tracing backend: one evaluator span per scored event, over OTLP.

For each event whose ``trace_id`` is an OpenTelemetry trace id (32 hex digits),
the sink emits a span named ``rag-sidecar.evaluation`` in the same trace —
parented to the request's root span when the trace came in over OTLP
(``metadata.root_span_id``) — marked ``openinference.span.kind = EVALUATOR`` and
carrying one ``gen_ai.evaluation.result`` event per score, so the scores sit next
to the request in Tempo, Jaeger or Phoenix. Traces with other ids are skipped and
counted. Export is the OpenTelemetry SDK's batch processor (a bounded queue that
drops when the backend is down): best effort by design, never blocking scoring;
spans an export failed to deliver are counted (``outcome="export_failed"``).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    TraceFlags,
    set_span_in_context,
)
from prometheus_client import CollectorRegistry, Counter

from .. import __version__
from ..stages import Result

_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_HEX16 = re.compile(r"^[0-9a-f]{16}$")
EVALUATION_EVENT = "gen_ai.evaluation.result"


def make_exporter(uri: str, *, timeout_s: float = 10.0) -> SpanExporter:
    """An OTLP span exporter for ``otlp+http://HOST:PORT`` or ``otlp+grpc://HOST:PORT``."""
    if uri.startswith("otlp+http://"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        base = "http://" + uri.removeprefix("otlp+http://").rstrip("/")
        return OTLPSpanExporter(endpoint=f"{base}/v1/traces", timeout=timeout_s)
    if uri.startswith("otlp+grpc://"):
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcExporter,
        )

        return GrpcExporter(
            endpoint=uri.removeprefix("otlp+grpc://"), insecure=True, timeout=int(timeout_s)
        )
    raise ValueError(f"not an OTLP URI: {uri!r}")


class _Counted(SpanExporter):
    """Wraps an exporter, counting the spans of each failed export."""

    def __init__(self, inner: SpanExporter, failed: Counter) -> None:
        self._inner = inner
        self._failed = failed

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self._inner.export(spans)
        except Exception:
            self._failed.inc(len(spans))
            raise
        if result is not SpanExportResult.SUCCESS:
            self._failed.inc(len(spans))
        return result

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


class OtlpScoreSink:
    """Emits evaluator spans with ``gen_ai.evaluation.result`` events for scored traces."""

    def __init__(
        self,
        exporter: SpanExporter,
        registry: CollectorRegistry,
        *,
        service_name: str = "rag-sidecar",
        max_queue_size: int = 8192,
    ) -> None:
        self.name = "otlp"
        self._provider = TracerProvider(
            resource=Resource.create({"service.name": service_name, "service.version": __version__})
        )
        self._tracer = self._provider.get_tracer("rag-sidecar", __version__)
        self.spans = Counter(
            "rag_sidecar_otlp_score_spans",
            "Evaluator spans by outcome (emitted, skipped_id, export_failed).",
            ("outcome",),
            registry=registry,
        )
        counted = _Counted(exporter, self.spans.labels("export_failed"))
        self._provider.add_span_processor(
            BatchSpanProcessor(counted, max_queue_size=max_queue_size)
        )

    async def start(self) -> None:
        """The exporter connects lazily."""

    async def write(self, results: Sequence[Result]) -> None:
        """Create one evaluator span per event (export happens in the SDK's thread)."""
        for r in results:
            ev = r.event
            if ev.type not in ("heuristic", "judge", "embedding") or not ev.scores:
                continue  # drift and feedback events carry no per-trace evaluation
            if not _HEX32.match(ev.trace_id) or int(ev.trace_id, 16) == 0:
                self.spans.labels("skipped_id").inc()
                continue
            root = r.trace.metadata.get("root_span_id")
            parent_span = int(root, 16) if isinstance(root, str) and _HEX16.match(root) else 0
            parent = SpanContext(
                trace_id=int(ev.trace_id, 16),
                span_id=parent_span or 1,
                is_remote=True,
                trace_flags=TraceFlags(TraceFlags.SAMPLED),
            )
            ctx = set_span_in_context(NonRecordingSpan(parent))
            span = self._tracer.start_span(
                "rag-sidecar.evaluation",
                context=ctx,
                attributes={
                    "openinference.span.kind": "EVALUATOR",
                    "rag_sidecar.event_id": ev.event_id,
                    "rag_sidecar.event_type": ev.type,
                    "rag_sidecar.scorer_version": ev.scorer_version,
                    "rag_sidecar.flags": list(ev.flags),
                },
            )
            explanation = ", ".join(ev.flags) if ev.flags else ""
            for name, value in ev.scores.items():
                span.add_event(
                    EVALUATION_EVENT,
                    {
                        "gen_ai.evaluation.name": name,
                        "gen_ai.evaluation.score.value": float(value),
                        "gen_ai.evaluation.score.label": _label(name, value),
                        "gen_ai.evaluation.explanation": explanation,
                    },
                )
            span.end()
            self.spans.labels("emitted").inc()

    async def flush(self) -> None:
        """Export everything queued."""
        await asyncio.to_thread(self._provider.force_flush)

    async def aclose(self) -> None:
        """Flush and stop the exporter."""
        await asyncio.to_thread(self._provider.shutdown)


def _label(name: str, value: float) -> str:
    """A coarse pass/fail label for ratio scores (retriever units and counts get none)."""
    if name.startswith("retrieval_") or name in ("answer_length", "retrieval_count"):
        return ""
    return "pass" if value >= 0.5 else "fail"
