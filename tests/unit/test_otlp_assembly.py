"""Trace assembly: batches in any order, completion, stragglers, bounded memory, late spans."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans

from sidecar.sources.otlp import AssemblySettings, LateFeedback, TraceAssembler
from sidecar.trace import Feedback, Trace
from tests.support import otel_spans as o


def assembler(**settings: Any) -> TraceAssembler:
    return TraceAssembler(AssemblySettings(**settings))


def only(req: o.RagRequest, *names: str) -> list[ResourceSpans]:
    """The request's spans whose names are in ``names``."""
    out: list[ResourceSpans] = []
    for rs in req.request.resource_spans:
        copy = ResourceSpans()
        copy.CopyFrom(rs)
        for ss in copy.scope_spans:
            keep = [s for s in ss.spans if s.name in names]
            del ss.spans[:]
            ss.spans.extend(keep)
        out.append(copy)
    return out


def incomplete_rag(seed: int) -> list[ResourceSpans]:
    """A retriever span alone: no root, no answer (what a misrouted replica sees)."""
    return only(o.llama_index_rag(seed=seed), "VectorIndexRetriever.retrieve")


def reference(req: o.RagRequest) -> Trace:
    a = assembler(settle_s=0)
    [trace] = a.add(req.resource_spans, 0.0).traces
    return trace


# ------------------------------------------------------------ order and batches


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("factory", [o.llama_index_rag, o.many_chains, o.genai_rag])
def test_any_batching_and_order_assembles_the_same_trace(seed: int, factory: Any) -> None:
    req = factory()
    expected = reference(req)
    a = assembler(settle_s=1.0)
    batches = o.split_batches(req, n=1 + seed % 4, seed=seed)
    emitted: list[Trace] = []
    for i, batch in enumerate(batches):
        emitted += a.add(batch, 100.0 + 0.2 * i).traces  # within the settle time
    assert emitted == []
    emitted += a.expire(100.0 + 0.2 * len(batches) + 1.0).traces
    assert [t.model_dump() for t in emitted] == [expected.model_dump()]
    assert a.pending == 0 and a.pending_spans == 0


def test_several_traces_in_one_export_are_separated() -> None:
    reqs = [o.llama_index_rag(seed=s, query=f"question {s}?") for s in range(5)]
    a = assembler(settle_s=0)
    out = a.add(list(o.merge(*reqs).resource_spans), 0.0)
    assert sorted(t.query for t in out.traces) == [f"question {s}?" for s in range(5)]
    assert {t.trace_id for t in out.traces} == {r.trace_id for r in reqs}


def test_settle_time_waits_for_children_that_come_after_the_root() -> None:
    req = o.llama_index_rag()
    root_first = only(
        req, "RetrieverQueryEngine.query", "OpenAI.chat", "CompactAndRefine.synthesize"
    )
    later = only(req, "VectorIndexRetriever.retrieve", "CohereRerank.postprocess_nodes")
    a = assembler(settle_s=1.0)
    assert a.add(root_first, 10.0).traces == []
    assert a.expire(10.9).traces == []
    assert a.add(later, 10.9).traces == []
    assert a.expire(11.8).traces == []  # the settle timer restarted with the last span
    [trace] = a.expire(11.9).traces
    assert [c.id for c in trace.chunks] == ["kb-2", "kb-1"]
    assert a.stats.traces_emitted == {"root": 1}


def test_settle_zero_emits_from_add() -> None:
    a = assembler(settle_s=0)
    out = a.add(o.llama_index_rag().resource_spans, 0.0)
    assert len(out.traces) == 1
    assert a.emitted == 1 and a.spans_seen == 6


def test_duplicate_spans_are_counted_once() -> None:
    req = o.llama_index_rag()
    a = assembler()
    a.add(req.resource_spans, 0.0)
    a.add(req.resource_spans, 0.5)  # an exporter retry
    [trace] = a.expire(2.0).traces
    assert trace.metadata["span_count"] == 6
    assert a.stats.spans_duplicate == 6


# ------------------------------------------------------------- stragglers


def test_a_rootless_trace_with_query_and_answer_is_emitted_after_the_root_grace() -> None:
    req = o.llama_index_rag()
    spans = only(req, "VectorIndexRetriever.retrieve", "OpenAI.chat", "CompactAndRefine.synthesize")
    a = assembler(settle_s=1.0, root_grace_s=5.0)
    a.add(spans, 0.0)
    assert a.expire(4.9).traces == []
    [trace] = a.expire(5.0).traces
    assert trace.metadata["assembled"] == "orphan_root"
    assert (trace.query, trace.answer) == (o.QUERY, o.ANSWER)
    assert a.stats.traces_emitted == {"orphan_root": 1}


def test_straggler_timeout_emits_what_is_complete_enough() -> None:
    req = o.llama_index_rag()
    spans = only(req, "VectorIndexRetriever.retrieve", "OpenAI.chat")
    a = assembler(root_grace_s=60.0, straggler_timeout_s=30.0)  # no stand-in root first
    a.add(spans, 0.0)
    assert a.expire(29.0).traces == []
    [trace] = a.expire(30.0).traces
    assert trace.metadata["assembled"] == "timeout"
    assert a.stats.traces_emitted == {"timeout": 1}
    assert a.incomplete == {}


def chain(attrs: dict[str, Any], seed: int, *, retriever: bool = False) -> list[ResourceSpans]:
    rec = o.Recorder("svc", seed=seed)
    root = rec.start("chain", {"openinference.span.kind": "CHAIN", **attrs})
    if retriever:
        child = rec.start("retrieve", {"openinference.span.kind": "RETRIEVER"}, parent=root)
        rec.end(child, 1)
    rec.end(root, 2)
    return list(rec.request().resource_spans)


def test_incomplete_traces_are_counted_by_what_was_missing() -> None:
    a = assembler(straggler_timeout_s=30.0)
    a.add(incomplete_rag(seed=5), 0.0)  # a retriever alone: no root
    a.add(chain({"input.value": "q?"}, seed=6, retriever=True), 0.0)  # no answer
    a.add(chain({"output.value": "a."}, seed=7), 0.0)  # no query
    a.add(chain({"input.value": "q?", "output.value": ""}, seed=8), 0.0)  # an empty answer
    out = a.expire(10.0)
    assert [t.answer for t in out.traces] == [""]  # emitted: flagged empty_answer downstream
    assert a.expire(29.9).traces == []
    assert a.incomplete == {}
    assert a.expire(30.0).traces == []
    assert a.incomplete == {"root": 1, "answer": 1, "query": 1}
    assert a.pending == 0


def test_traces_without_ai_spans_are_not_rag_not_incomplete() -> None:
    rec = o.Recorder("web")
    root = rec.start("GET /health", {"http.request.method": "GET"})
    child = rec.start("SELECT 1", {"db.system": "postgresql"}, parent=root)
    rec.end(child, 1)
    rec.end(root, 2)
    a = assembler(not_rag_window_s=15.0)
    a.add(list(rec.request().resource_spans), 0.0)
    assert a.expire(1.0).traces == []
    assert a.pending == 0 and a.provisional == 1  # late spans could still reopen it
    assert a.stats.traces_not_rag == 0
    a.expire(15.9)
    assert a.stats.traces_not_rag == 0
    a.expire(16.0)
    assert a.stats.traces_not_rag == 1 and a.incomplete == {} and a.provisional == 0


def test_drain_emits_what_it_can_and_counts_the_rest() -> None:
    a = assembler()
    a.add(o.llama_index_rag().resource_spans, 0.0)
    a.add(incomplete_rag(seed=3), 0.0)
    out = a.drain()
    assert len(out.traces) == 1 and out.traces[0].metadata["assembled"] == "drain"
    assert a.incomplete == {"root": 1}
    assert a.pending == 0 and a.pending_spans == 0


# ---------------------------------------------------------------- memory


def test_pending_traces_are_bounded_with_lru_eviction_counted() -> None:
    a = assembler(max_pending_traces=3)
    complete = o.llama_index_rag(seed=100)
    a.add(complete.resource_spans, 0.0)  # oldest: evicted first, and complete enough
    out = [a.add(incomplete_rag(seed=s), float(s)) for s in range(1, 5)]
    assert a.pending == 3
    assert a.evicted == 2
    assert [t.trace_id for t in out[2].traces] == [complete.trace_id]
    assert out[2].traces[0].metadata["assembled"] == "evicted"
    assert a.incomplete == {"root": 1}  # the second eviction had no root and no answer


def test_spans_per_trace_are_bounded_but_essential_spans_kept() -> None:
    rec = o.Recorder("svc")
    root = rec.start("chain", {"openinference.span.kind": "CHAIN", "input.value": "q?"})
    for i in range(20):
        glue = rec.start(f"glue{i}", {"openinference.span.kind": "CHAIN"}, parent=root)
        rec.end(glue, 1)
    llm = rec.start(
        "llm",
        {
            "openinference.span.kind": "LLM",
            **o.oi_messages("llm.output_messages", [("assistant", "a.")]),
        },
        parent=root,
    )
    rec.end(llm, 2)
    rec.end(root, 3)
    a = assembler(settle_s=0, max_spans_per_trace=10)
    [trace] = a.add(list(rec.request().resource_spans), 0.0).traces
    assert trace.answer == "a." and trace.metadata["span_count"] == 12
    assert a.stats.spans_dropped == 10


# ------------------------------------------------------------ late spans


def test_late_spans_are_counted_not_a_second_trace() -> None:
    req = o.llama_index_rag()
    a = assembler(settle_s=0)
    a.add(only(req, "RetrieverQueryEngine.query", "OpenAI.chat"), 0.0)
    assert a.emitted == 1
    out = a.add(only(req, "VectorIndexRetriever.retrieve"), 1.0)
    assert out.traces == [] and a.late_spans == 1
    assert a.add(req.resource_spans, 2.0).traces == []  # a full redelivery
    assert a.drain().traces == [] and a.emitted == 1


def test_late_human_feedback_comes_back_as_late_feedback() -> None:
    req = o.llama_index_rag()
    a = assembler(settle_s=0)
    a.add(req.resource_spans, 0.0)
    out = a.add(o.feedback_carrier(req).resource_spans, 60.0)
    assert out.feedback == [
        LateFeedback(
            req.trace_id, Feedback(thumbs="down", comment="Wrong menu name."), req.answer_span_id
        )
    ]
    assert a.stats.feedback_late == 1
    assert a.pending == 0  # the carrier's own trace is not assembled


@pytest.mark.parametrize("with_trace_id", [True, False])
def test_feedback_carrier_naming_the_target_in_attributes(with_trace_id: bool) -> None:
    req = o.llama_index_rag()
    carrier = o.feedback_carrier(req, via="attribute", label="up", score=None, explanation=None)
    spans = carrier.resource_spans
    if not with_trace_id:  # only feedback.span_id: resolved through the remembered answer span
        for rs in spans:
            for span in rs.scope_spans[0].spans:
                keep = [kv for kv in span.attributes if kv.key != "feedback.trace_id"]
                del span.attributes[:]
                span.attributes.extend(keep)
    a = assembler(settle_s=0)
    a.add(req.resource_spans, 0.0)
    [late] = a.add(spans, 5.0).feedback
    assert late.trace_id == req.trace_id and late.feedback == Feedback(thumbs="up")


def test_feedback_before_emission_joins_the_trace() -> None:
    req = o.llama_index_rag()
    a = assembler(settle_s=1.0)
    a.add(req.resource_spans, 0.0)
    assert a.add(o.feedback_carrier(req, label=None, score=1).resource_spans, 0.5).feedback == []
    [trace] = a.expire(2.0).traces
    assert trace.feedback == Feedback(thumbs="up", comment="Wrong menu name.")


def test_unresolvable_carriers_and_late_machine_evaluations_are_counted() -> None:
    req = o.llama_index_rag()
    a = assembler(settle_s=0)
    a.add(req.resource_spans, 0.0)
    llm_eval = o.feedback_carrier(req, annotator_kind="LLM", seed=5)
    assert a.add(llm_eval.resource_spans, 1.0).feedback == []
    stranger = o.feedback_carrier(o.llama_index_rag(seed=77), via="attribute", seed=6)
    for rs in stranger.resource_spans:  # span id only, of a trace never seen here
        for span in rs.scope_spans[0].spans:
            keep = [kv for kv in span.attributes if kv.key != "feedback.trace_id"]
            del span.attributes[:]
            span.attributes.extend(keep)
    assert a.add(stranger.resource_spans, 1.0).feedback == []
    assert a.stats.annotations_unrouted == 2


def test_spans_of_ignored_scopes_are_skipped() -> None:
    rec = o.Recorder("rag-sidecar", scope="rag-sidecar")
    span = rec.start("evaluate", {"openinference.span.kind": "EVALUATOR"})
    rec.end(span, 1)
    a = assembler()
    out = a.add(list(rec.request().resource_spans), 0.0)
    assert out.rejected == [] and a.pending == 0
    assert a.stats.spans_ignored == 1 and a.spans_seen == 1


def test_malformed_spans_are_rejected_and_the_rest_assembled() -> None:
    req = o.llama_index_rag()
    spans = req.resource_spans
    spans[0].scope_spans[0].spans[0].trace_id = b"\x00" * 3
    a = assembler(settle_s=0)
    out = a.add(spans, 0.0)
    assert [r for r, _ in out.rejected] == ["bad_trace_id"]
    assert a.stats.spans_rejected == {"bad_trace_id": 1}
    assert a.spans_seen == 6
    assert len(out.traces) == 1  # the first exported span was the embedding: not needed
