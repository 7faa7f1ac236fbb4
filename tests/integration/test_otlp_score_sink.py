"""Scores go back to the tracing backend: received by our own OTLP receivers (HTTP and gRPC)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from prometheus_client import CollectorRegistry

from sidecar.events import Labels, Sampling, ScoredEvent
from sidecar.http import HttpServer
from sidecar.sinks.otlp import OtlpScoreSink, make_exporter
from sidecar.sources.otlp.receiver import Ack, add_http_route, start_grpc_server
from sidecar.stages import Result
from sidecar.trace import trace_from_object
from tests.conftest import make_trace

pytestmark = pytest.mark.integration
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
ROOT_SPAN = "00f067aa0ba902b7"


def result(trace_id: str, scores: dict[str, float]) -> Result:
    trace = trace_from_object(make_trace(trace_id=trace_id, metadata={"root_span_id": ROOT_SPAN}))
    ev = ScoredEvent(
        event_id="e1",
        trace_id=trace_id,
        type="judge",
        timestamp=0.0,
        scored_at=0.0,
        scorer_version="judge-rag_v1",
        source="otlp",
        labels=Labels("a", "m", "v1", None),
        scores=scores,
        flags=["judge_unverified"],
        sampled=Sampling(True, []),
    )
    return Result(trace, ev)


def attrs(kv: Sequence[object]) -> dict[str, object]:
    out: dict[str, object] = {}
    for a in kv:
        v = a.value  # type: ignore[attr-defined]
        field = v.WhichOneof("value")
        out[a.key] = (
            getattr(v, field)
            if field != "array_value"
            else [x.string_value for x in v.array_value.values]
        )
    return out


@pytest.mark.parametrize("transport", ["http", "grpc"])
async def test_evaluator_spans_reach_an_otlp_receiver(transport: str) -> None:
    received: list[ResourceSpans] = []

    def accept(spans: Sequence[ResourceSpans], _: str) -> Ack:
        received.extend(spans)
        return Ack()

    if transport == "http":
        server = HttpServer("127.0.0.1", 0)
        add_http_route(server, accept, token=None, max_body_bytes=1 << 20, on_error=lambda _: None)
        await server.start()
        uri, stop = f"otlp+http://127.0.0.1:{server.bound_port}", server.aclose
    else:
        grpc_server, port = await start_grpc_server(
            "127.0.0.1", 0, accept, token=None, max_body_bytes=1 << 20, on_error=lambda _: None
        )
        uri = f"otlp+grpc://127.0.0.1:{port}"

        async def stop() -> None:
            await grpc_server.stop(0)

    registry = CollectorRegistry()
    sink = OtlpScoreSink(make_exporter(uri), registry)
    try:
        await sink.start()
        await sink.write(
            [
                result(TRACE_ID, {"faithfulness": 0.25, "answer_relevance": 1.0}),
                result("not-an-otel-id", {"faithfulness": 1.0}),
            ]
        )
        await sink.aclose()
    finally:
        await stop()
    spans = [s for rs in received for ss in rs.scope_spans for s in ss.spans]
    assert len(spans) == 1
    span = spans[0]
    assert span.trace_id.hex() == TRACE_ID and span.parent_span_id.hex() == ROOT_SPAN
    assert attrs(span.attributes)["openinference.span.kind"] == "EVALUATOR"
    evals = {
        attrs(e.attributes)["gen_ai.evaluation.name"]: attrs(e.attributes) for e in span.events
    }
    assert set(evals) == {"faithfulness", "answer_relevance"}
    assert evals["faithfulness"]["gen_ai.evaluation.score.value"] == 0.25
    assert evals["faithfulness"]["gen_ai.evaluation.score.label"] == "fail"
    assert all(e.name == "gen_ai.evaluation.result" for e in span.events)
    assert (
        registry.get_sample_value("rag_sidecar_otlp_score_spans_total", {"outcome": "skipped_id"})
        == 1
    )


class Failing(SpanExporter):
    """A tracing backend that is down: every export fails (or raises)."""

    def __init__(self, *, raises: bool = False) -> None:
        self.raises = raises

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self.raises:
            raise ConnectionError("connection refused")
        return SpanExportResult.FAILURE

    def shutdown(self) -> None:
        pass


@pytest.mark.parametrize("raises", [False, True])
async def test_failed_exports_are_counted(raises: bool) -> None:
    """Spans the backend never got were invisible: ``emitted`` counted them as sent."""
    registry = CollectorRegistry()
    sink = OtlpScoreSink(Failing(raises=raises), registry)
    await sink.write([result(TRACE_ID, {"faithfulness": 0.5}), result(TRACE_ID, {"f": 1.0})])
    await sink.flush()
    await sink.aclose()
    failed = registry.get_sample_value(
        "rag_sidecar_otlp_score_spans_total", {"outcome": "export_failed"}
    )
    assert failed == 2
