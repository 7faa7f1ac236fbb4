"""Trace assembly across services, memory budget and drop accounting."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans
from opentelemetry.trace import SpanContext

from sidecar.sources.otlp import AssemblySettings, LateFeedback
from sidecar.trace import Feedback
from tests.support import otel_services as svc
from tests.support import otel_spans as o
from tests.unit.test_otlp_assembly import assembler, only


def spans(req: Any) -> list[ResourceSpans]:
    return list(req.resource_spans)


# ------------------------------------------------- plain root first, AI spans later


def test_a_plain_root_that_settled_first_is_reopened_by_the_workers_ai_spans() -> None:
    two = svc.gateway_and_worker()
    a = assembler(settle_s=1.0)
    a.add(spans(two.gateway), 0.0)
    assert a.expire(1.0).traces == []  # a plain HTTP trace so far: closed, provisionally
    assert a.add(spans(two.worker), 1.5).traces == []  # 1.5 s later (BatchSpanProcessor)
    [trace] = a.expire(2.5).traces
    assert trace.trace_id == two.trace_id
    assert (trace.query, trace.answer) == (svc.QUERY, svc.ANSWER)
    assert [c.id for c in trace.chunks] == ["kb-1"]
    assert trace.app == "rag-worker"
    a.expire(60.0)
    assert a.stats.traces_reopened == 1
    assert a.stats.traces_not_rag == 0 and a.late_spans == 0


def test_with_settle_zero_the_reopened_trace_is_emitted_from_add() -> None:
    two = svc.gateway_and_worker(seed=21)
    a = assembler(settle_s=0)
    assert a.add(spans(two.gateway), 0.0).traces == []
    [trace] = a.add(spans(two.worker), 4.0).traces
    assert [c.id for c in trace.chunks] == ["kb-1"]


def test_after_the_window_the_not_rag_decision_is_final_and_late_spans_dropped() -> None:
    two = svc.gateway_and_worker(seed=31)
    a = assembler(settle_s=1.0, not_rag_window_s=10.0)
    a.add(spans(two.gateway), 0.0)
    a.expire(1.0)
    a.expire(11.0)
    assert a.stats.traces_not_rag == 1 and a.provisional == 0
    out = a.add(spans(two.worker), 12.0)
    assert out.traces == [] and a.pending == 0
    assert out.dropped == {"late_ai": 2, "late_retrieval": 1}
    assert out.unused == {"late_ai": 2, "late_retrieval": 1}  # reported as partial success
    assert a.stats.spans_late == 3


def test_a_reopened_trace_that_stays_plain_is_counted_once() -> None:
    rec = o.Recorder("web")
    root = rec.start("GET /", {"http.request.method": "GET"})
    first = rec.start("SELECT 1", {"db.system": "postgresql"}, parent=root)
    rec.end(first, 1)
    rec.end(root, 3)
    later = rec.start("SELECT 2", {"db.system": "postgresql"}, parent=root, at_ms=1)
    rec.end(later, 2)
    finished = rec.finished()
    a = assembler(settle_s=1.0, not_rag_window_s=10.0)
    a.add(spans(encode_spans(finished[:2])), 0.0)
    a.expire(1.0)
    a.add(spans(encode_spans(finished[2:])), 2.0)  # reopens, still no AI span
    a.expire(3.0)
    assert a.pending == 0 and a.provisional == 1 and a.stats.traces_reopened == 1
    a.expire(13.0)
    assert a.stats.traces_not_rag == 1


def test_drain_makes_not_rag_decisions_final() -> None:
    two = svc.gateway_and_worker(seed=41)
    a = assembler(settle_s=1.0)
    a.add(spans(two.gateway), 0.0)
    a.expire(1.0)
    assert a.drain().traces == [] and a.stats.traces_not_rag == 1


def test_late_retrieval_spans_of_an_emitted_trace_are_counted_by_reason() -> None:
    req = o.llama_index_rag()
    a = assembler(settle_s=0)
    [trace] = a.add(only(req, "RetrieverQueryEngine.query", "OpenAI.chat"), 0.0).traces
    assert trace.chunks == []  # emitted without chunks: not amended later (scored once)
    out = a.add(only(req, "VectorIndexRetriever.retrieve", "CohereRerank.postprocess_nodes"), 1.0)
    assert out.traces == [] and out.dropped == {"late_retrieval": 2}
    assert a.stats.spans_late_by == {"late_retrieval": 2} and a.late_spans == 2
    assert a.stats.dropped()["late_retrieval"] == 2


# ------------------------------------------------ feedback spans in the answer's trace


def feedback_span(trace_id: str, parent_span_id: str, seed: int = 5) -> list[ResourceSpans]:
    """A human thumbs-down recorded in the answer's own trace (the README's advice for several
    replicas), e.g. by a feedback API that continued the request's trace context."""
    rec = o.Recorder("feedback-api", seed=seed)
    attrs = {
        "annotations.0.annotation.name": "user_feedback",
        "annotations.0.annotation.annotator_kind": "HUMAN",
        "annotations.0.annotation.label": "thumbs_down",
    }
    parent = SpanContext(int(trace_id, 16), int(parent_span_id, 16), is_remote=True)
    rec.end(rec.start("user_feedback", attrs, remote_parent=parent, at_ms=60_000), 60_001)
    return spans(rec.request())


def test_a_feedback_span_does_not_reopen_a_trace_parked_as_not_rag() -> None:
    """It used to reopen the trace, which then ended incomplete and took the feedback along."""
    two = svc.gateway_and_worker(seed=51)
    a = assembler(settle_s=1.0, not_rag_window_s=10.0)
    a.add(spans(two.gateway), 0.0)
    a.expire(1.0)
    out = a.add(feedback_span(two.trace_id, "00000000000000aa"), 2.0)
    assert out.feedback == [
        LateFeedback(two.trace_id, Feedback(thumbs="down"), out.feedback[0].span_id)
    ]
    assert a.pending == 0 and a.provisional == 1 and a.stats.traces_reopened == 0
    for t in (3.0, 40.0, 100.0):
        assert a.expire(t).traces == []
    assert a.incomplete == {} and a.stats.traces_not_rag == 1


def test_a_parked_trace_still_reopens_after_a_feedback_span() -> None:
    two = svc.gateway_and_worker(seed=61)
    a = assembler(settle_s=1.0)
    a.add(spans(two.gateway), 0.0)
    a.expire(1.0)
    assert len(a.add(feedback_span(two.trace_id, "00000000000000aa"), 1.2).feedback) == 1
    a.add(spans(two.worker), 1.5)
    [trace] = a.expire(2.5).traces  # the joiner joins the feedback to it (feedback first)
    assert trace.trace_id == two.trace_id and trace.feedback is None


def test_a_feedback_span_of_a_forgotten_trace_comes_back_as_late_feedback() -> None:
    """Feedback an hour later, when ``emitted_memory`` no longer holds the trace: it used to
    start a new trace of its own that ended incomplete (``answer``), the feedback lost."""
    req, other = o.llama_index_rag(seed=1), o.llama_index_rag(seed=2)
    a = assembler(settle_s=0, emitted_memory=1)
    a.add(req.resource_spans, 0.0)
    a.add(other.resource_spans, 1.0)  # pushes ``req`` out of the memory
    assert req.answer_span_id is not None
    out = a.add(feedback_span(req.trace_id, req.answer_span_id), 3600.0)
    [late] = out.feedback
    assert late.trace_id == req.trace_id and late.feedback == Feedback(thumbs="down")
    assert a.pending == 0
    a.expire(3700.0)
    assert a.incomplete == {} and a.emitted == 2


# ---------------------------------------------------------------- memory budget


def big_rootless(t: int, n: int = 10, size: int = 20_000) -> list[ResourceSpans]:
    """``n`` retriever spans of ~``size`` bytes each, children of a root not arrived yet."""
    rec = o.Recorder("svc", seed=1000 + t)
    root = rec.start("query", {"openinference.span.kind": "CHAIN"})
    for j in range(n):
        doc = {"retrieval.documents.0.document.content": f"{t}-{j} " + "x" * size}
        span = rec.start("retrieve", {"openinference.span.kind": "RETRIEVER", **doc}, parent=root)
        rec.end(span, 1)
    return spans(encode_spans(rec.finished()))  # the root is still open


def test_the_byte_estimate_follows_the_content_held() -> None:
    a = assembler(max_pending_bytes=1 << 30)
    a.add(big_rootless(0), 0.0)
    assert a.pending_spans == 10
    assert 10 * 20_000 < a.pending_bytes < 10 * 25_000


def test_pending_bytes_are_bounded_and_full_is_signalled_before_eviction() -> None:
    a = assembler(max_pending_bytes=1 << 20)  # 1 MiB: 90% after 6 traces of ~166 KB
    full_at = None
    for t in range(12):
        a.add(big_rootless(t, size=15_500), float(t))
        assert a.pending_bytes <= 1 << 20
        if a.full and full_at is None:
            full_at = t
            assert a.evicted == 0  # the receiver refuses spans before anything is evicted
            assert a.pending_bytes >= 0.9 * (1 << 20)
    assert full_at is not None
    assert a.evicted > 0 and a.incomplete == {"root": a.evicted}
    a.drain()
    assert a.pending_bytes == 0 and not a.full


def test_full_also_near_the_pending_trace_count() -> None:
    a = assembler(max_pending_traces=10)
    for t in range(8):
        a.add(only(o.llama_index_rag(seed=t), "VectorIndexRetriever.retrieve"), 0.0)
    assert not a.full
    a.add(only(o.llama_index_rag(seed=9), "VectorIndexRetriever.retrieve"), 0.0)
    assert a.full and a.evicted == 0


def test_max_pending_bytes_is_an_otlp_setting() -> None:
    from sidecar.config import load_settings

    s = load_settings(otlp={"assembly": {"max_pending_bytes": 64 << 20, "not_rag_window_s": 30}})
    assert s.otlp.assembly.max_pending_bytes == 64 << 20
    assert s.otlp.assembly.not_rag_window_s == 30
    assert AssemblySettings().max_pending_bytes == 256 << 20
    assert AssemblySettings().not_rag_window_s >= 10


# ---------------------------------------------------------------- drops per call


def test_drops_are_reported_per_call_and_counted_by_reason() -> None:
    req = o.many_chains()
    a = assembler(settle_s=0.5, max_spans_per_trace=4)
    out = a.add(req.resource_spans, 0.0)
    assert out.dropped == {"span_limit": 5} and out.unused == {"span_limit": 5}
    retry = a.add(req.resource_spans, 0.1)  # an exporter retry: nothing new, nothing lost
    assert retry.dropped == {"duplicate": 8, "span_limit": 5}
    assert retry.unused == {"span_limit": 5}
    assert a.stats.dropped() == {
        "duplicate": 8,
        "ignored_scope": 0,
        "span_limit": 10,
        "unrouted_annotation": 0,
        "late_retrieval": 0,
        "late_ai": 0,
        "late_other": 0,
    }


def test_spans_of_ignored_scopes_are_counted_as_dropped_but_not_reported() -> None:
    rec = o.Recorder("rag-sidecar", scope="rag-sidecar")
    span = rec.start("evaluate", {"openinference.span.kind": "EVALUATOR"})
    rec.end(span, 1)
    out = assembler().add(spans(rec.request()), 0.0)
    assert out.dropped == {"ignored_scope": 1} and out.unused == {}


@pytest.mark.parametrize(
    ("where", "text"),
    [("attribute", "x" * 100_000), ("event", "x" * 100_000), ("attribute", "\U0001f600" * 25_000)],
)
def test_the_byte_budget_counts_what_spans_really_hold(where: str, text: str) -> None:
    """Content in the older GenAI events, and non-ASCII text (4 bytes a character in an
    emoji string), count as much as ASCII attributes: else the budget never fills."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue

    req = ExportTraceServiceRequest()
    ss = req.resource_spans.add().scope_spans.add()
    ss.scope.name = "opentelemetry.instrumentation.openai"
    for i in range(20):
        s = ss.spans.add()
        s.trace_id, s.span_id = (i + 1).to_bytes(16, "big"), (i + 1).to_bytes(8, "big")
        s.parent_span_id = (1 << 40).to_bytes(8, "big")  # not a root: stays pending
        s.name = "chat"
        s.attributes.add(key="gen_ai.operation.name", value=AnyValue(string_value="chat"))
        if where == "attribute":
            s.attributes.add(key="gen_ai.completion", value=AnyValue(string_value=text))
        else:
            ev = s.events.add()
            ev.name = "gen_ai.content.completion"
            ev.attributes.add(key="gen_ai.completion", value=AnyValue(string_value=text))
    a = assembler(settle_s=10)
    a.add(list(req.resource_spans), 0.0)
    held = 20 * sys.getsizeof(text.encode().decode())  # a copy without a cached UTF-8 form
    assert held <= a.pending_bytes < 1.5 * held
