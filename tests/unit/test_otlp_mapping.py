"""OTLP span mapping: every supported convention lands in the expected Trace fields."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, Span

from sidecar.sources.otlp import AssemblySettings, SpanMapper, TraceAssembler
from sidecar.sources.otlp.feedback import Annotation, feedback_from
from sidecar.sources.otlp.mapping import any_value
from sidecar.sources.otlp.values import answer_from, query_from
from sidecar.trace import Feedback, Trace
from tests.support import otel_spans as o


def one_trace(resource_spans: list[ResourceSpans], **settings: Any) -> Trace:
    assembler = TraceAssembler(AssemblySettings(settle_s=0, **settings))
    out = assembler.add(resource_spans, 0.0)
    assert out.rejected == []
    assert len(out.traces) == 1, assembler.stats
    return out.traces[0]


def chunk_tuples(trace: Trace) -> list[tuple[str, str, float | None, str | None]]:
    return [(c.id, c.text, c.score, c.source) for c in trace.chunks]


# ------------------------------------------------------------------ OpenInference


def test_llama_index_request_maps_every_field() -> None:
    req = o.llama_index_rag()
    trace = one_trace(req.resource_spans)
    assert trace.trace_id == req.trace_id
    assert len(trace.trace_id) == 32 and trace.trace_id == trace.trace_id.lower()
    assert trace.timestamp == o.T0_NS / 1e9
    assert trace.app == "support-bot"
    assert trace.model == "gpt-4o-mini"
    assert trace.prompt_version == "v3"  # llm.prompt_template.version
    assert trace.retriever == "VectorIndexRetriever"
    assert trace.query == o.QUERY
    assert trace.answer == o.ANSWER
    # the reranker's output (kb-2 then kb-1, its own scores) wins over the retriever's list
    assert chunk_tuples(trace) == [
        ("kb-2", o.DOCS[1][1], 0.99, "kb/policy.md"),
        ("kb-1", o.DOCS[0][1], 0.89, "kb/security.md"),
    ]
    meta = trace.metadata
    assert meta["format"] == "otlp"
    assert meta["convention"] == "openinference"
    assert meta["session_id"] == "sess-42"
    assert meta["user_id"] == "user-7"
    assert meta["tags"] == ["prod", "kb"]
    assert meta["app_metadata"] == {"tenant": "acme"}
    assert meta["span_count"] == 6
    assert meta["span_kinds"] == {
        "CHAIN": 2,
        "RETRIEVER": 1,
        "EMBEDDING": 1,
        "RERANKER": 1,
        "LLM": 1,
    }
    assert meta["root_span_id"] == req.root_span_id
    assert meta["answer_span_id"] == req.answer_span_id
    assert trace.feedback is None


def test_without_reranker_the_retriever_documents_are_the_chunks() -> None:
    trace = one_trace(o.llama_index_rag(reranked=None).resource_spans)
    assert chunk_tuples(trace) == [(d[0], d[1], d[2], d[3]) for d in o.DOCS]


def test_ids_only_in_metadata_and_no_scores() -> None:
    trace = one_trace(o.langchain_metadata_ids().resource_spans)
    assert [c.id for c in trace.chunks] == ["kb-1", "kb-2", "kb-3"]
    assert [c.score for c in trace.chunks] == [None, None, None]
    assert [c.source for c in trace.chunks] == ["kb/security.md", "kb/policy.md", "kb/2fa.md"]
    assert trace.query == o.QUERY  # from {"query": ...} JSON on the retriever/root
    assert trace.answer == o.ANSWER
    assert trace.prompt_version == "lc-7"  # from the root's metadata JSON
    assert trace.model == "gpt-4o"
    assert trace.app == "qa-service"


def test_many_chain_spans_the_answer_is_the_last_answering_llm_call() -> None:
    req = o.many_chains()
    trace = one_trace(req.resource_spans)
    # not the condense-question call, not the evaluator's judge call (ends later)
    assert trace.answer == "At least 12 characters."
    assert trace.metadata["answer_span_id"] == req.answer_span_id
    assert trace.model == "gpt-4o"
    assert trace.query == "How long must a password be?"  # what the retriever searched
    assert [c.id for c in trace.chunks] == ["kb-2"]


def test_answer_only_on_the_root_output() -> None:
    trace = one_trace(o.llama_index_rag(llm_output=False).resource_spans)
    assert trace.answer == o.ANSWER
    assert trace.model == "gpt-4o-mini"  # still the LLM span's model
    assert "answer_span_id" not in trace.metadata


def test_llm_output_is_preferred_over_a_post_processed_root_output() -> None:
    trace = one_trace(o.llama_index_rag(root_output=o.ANSWER + "\n\nSources: [1]").resource_spans)
    assert trace.answer == o.ANSWER


def test_prompt_version_attribute_is_configurable_and_read_from_the_resource() -> None:
    rec = o.Recorder("svc", resource={"app.prompt_version": "r-9"})
    root = rec.start("chain", {"openinference.span.kind": "CHAIN", "input.value": "q?"})
    root.set_attribute("output.value", "a.")
    rec.end(root, 10)
    spans = list(rec.request().resource_spans)
    assert one_trace(spans).prompt_version is None
    assert one_trace(spans, prompt_version_attribute="app.prompt_version").prompt_version == "r-9"


def test_a_local_root_below_a_remote_parent_is_the_root() -> None:
    req = o.llama_index_rag(remote_parent=True)
    trace = one_trace(req.resource_spans)
    assert trace.trace_id == "0af7651916cd43dd8448eb211c80319c"
    assert trace.metadata["assembled"] == "root"


# ------------------------------------------------------------------------ GenAI


@pytest.mark.parametrize("structured", [False, True])
def test_genai_retrieval_and_chat_spans(structured: bool) -> None:
    req = o.genai_rag(structured_documents=structured)
    trace = one_trace(req.resource_spans)
    assert trace.query == o.QUERY  # gen_ai.retrieval.query.text
    assert trace.answer == o.ANSWER  # gen_ai.output.messages parts
    assert chunk_tuples(trace) == [(d[0], d[1], d[2], d[3]) for d in o.DOCS]
    assert trace.retriever == "kb-index"  # gen_ai.data_source.id
    assert trace.model == "gpt-4o-mini"  # gen_ai.request.model before the response model
    assert trace.prompt_version == "g-2"
    assert trace.app == "genai-rag"
    assert trace.timestamp == o.T0_NS / 1e9  # the HTTP server root span's start
    meta = trace.metadata
    assert meta["convention"] == "genai"
    assert meta["session_id"] == "conv-9"
    assert meta["evaluations"] == [
        {
            "name": "Relevance",
            "score": 0.9,
            "label": "relevant",
            "explanation": "On topic.",
            "span_id": req.answer_span_id,
            "source": "gen_ai.evaluation.result",
        }
    ]


def test_openllmetry_indexed_prompt_and_completion() -> None:
    trace = one_trace(o.openllmetry_chat().resource_spans)
    assert trace.query == o.QUERY  # traceloop.entity.input {"args": [...]}
    assert trace.answer == o.ANSWER  # gen_ai.completion.0.content
    assert trace.model == "gpt-4o"
    assert trace.chunks == []
    assert trace.metadata["convention"] == "genai"


def test_legacy_genai_prompt_and_completion_json() -> None:
    rec = o.Recorder("legacy")
    span = rec.start(
        "chat gpt-4",
        {
            "gen_ai.system": "openai",
            "gen_ai.request.model": "gpt-4",
            "gen_ai.prompt": json.dumps([{"role": "user", "content": "What is RAG?"}]),
            "gen_ai.completion": json.dumps([{"role": "assistant", "content": "Retrieval."}]),
        },
    )
    rec.end(span, 5)
    trace = one_trace(list(rec.request().resource_spans))
    assert (trace.query, trace.answer, trace.model) == ("What is RAG?", "Retrieval.", "gpt-4")


# --------------------------------------------------------------------- feedback


def test_human_annotation_on_the_root_span_is_feedback_others_are_evaluations() -> None:
    rec = o.Recorder("svc")
    root = rec.start(
        "chain",
        {
            "openinference.span.kind": "CHAIN",
            "input.value": "q?",
            "output.value": "a.",
            "annotations.0.annotation.name": "user_feedback",
            "annotations.0.annotation.label": "👍",
            "annotations.0.annotation.annotator_kind": "HUMAN",
            "annotations.1.annotation.name": "hallucination",
            "annotations.1.annotation.score": 1,
            "annotations.1.annotation.label": "hallucinated",
            "annotations.1.annotation.annotator_kind": "LLM",
            "evaluations.0.evaluation.name": "rating",
            "evaluations.0.evaluation.score": 4,
            "evaluations.0.evaluation.annotator_kind": "HUMAN",
        },
    )
    rec.end(root, 10)
    trace = one_trace(list(rec.request().resource_spans))
    assert trace.feedback == Feedback(thumbs="up", rating=4.0)
    [evaluation] = trace.metadata["evaluations"]
    assert evaluation["name"] == "hallucination" and evaluation["annotator_kind"] == "LLM"


def test_a_linked_feedback_carrier_in_the_same_export_sets_the_trace_feedback() -> None:
    req = o.llama_index_rag()
    carrier = o.feedback_carrier(req)
    trace = one_trace(list(o.merge(req, carrier).resource_spans))
    assert trace.trace_id == req.trace_id
    assert trace.feedback == Feedback(thumbs="down", comment="Wrong menu name.")


@pytest.mark.parametrize(
    ("label", "score", "name", "expected"),
    [
        ("up", None, "feedback", Feedback(thumbs="up")),
        ("thumbs_down", None, "feedback", Feedback(thumbs="down")),
        ("Thumbs Up", 1, "thumbs", Feedback(thumbs="up")),
        (None, 1, "user_feedback", Feedback(thumbs="up")),
        (None, 0, "user_feedback", Feedback(thumbs="down")),
        (None, -1, "vote", Feedback(thumbs="down")),
        (None, 4.5, "rating", Feedback(rating=4.5)),
        (None, 1, "star_rating", Feedback(rating=1.0)),
        (None, 7, "satisfaction", Feedback(rating=7.0)),
        ("negative", 2, "csat", Feedback(thumbs="down", rating=2.0)),
    ],
)
def test_feedback_from_labels_and_scores(
    label: str | None, score: float | None, name: str, expected: Feedback
) -> None:
    ann = Annotation(name, score, label, None, "HUMAN", "00")
    assert feedback_from([ann]) == expected


def test_only_human_annotations_make_feedback() -> None:
    llm = Annotation("correctness", 0.0, "incorrect", None, "LLM", "00")
    unnamed = Annotation("hallucination", 1.0, None, None, None, "00")
    assert feedback_from([llm, unnamed]) is None
    implicit = Annotation("user_feedback", None, "down", None, None, "00")  # no kind: by name
    assert feedback_from([implicit]) == Feedback(thumbs="down")


# ----------------------------------------------------------------- value shapes


LC_HUMAN = {"lc": 1, "type": "constructor", "id": ["HumanMessage"], "kwargs": {"content": "How?"}}
ASSISTANT = {"role": "assistant", "content": "Fine."}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("How?", "How?"),
        ('{"query": "How?"}', "How?"),
        ('{"input": "How?", "chat_history": []}', "How?"),
        ('{"input": {"question": "How?"}}', "How?"),
        ('{"query_str": "How?", "custom_embedding_strs": null}', "How?"),
        ('[{"role": "system", "content": "Be nice"}, {"role": "user", "content": "How?"}]', "How?"),
        ('{"messages": [{"role": "user", "content": [{"type": "text", "text": "How?"}]}]}', "How?"),
        (json.dumps({"messages": [LC_HUMAN]}), "How?"),
        ('{"args": ["How?"], "kwargs": {}}', "How?"),
        ('{"inputs": "How?", "tags": [], "kwargs": {"name": "x"}}', "How?"),  # OpenLLMetry
        ("[1] not json", "[1] not json"),
        ('{"unknown": 1}', None),
        ("   ", None),
    ],
)
def test_query_shapes(value: str, expected: str | None) -> None:
    assert query_from(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Fine.", "Fine."),
        ('{"result": "Fine.", "query": "How?"}', "Fine."),
        ('{"output": "Fine."}', "Fine."),
        ('{"answer": "Fine.", "context": ["x"]}', "Fine."),
        ('"Fine."', "Fine."),
        ('{"outputs": "Fine.", "kwargs": {"tags": []}}', "Fine."),  # OpenLLMetry
        ('{"role": "assistant", "content": {"text": {"value": "Fine."}}}', "Fine."),
        (json.dumps([{"role": "user", "content": "How?"}, ASSISTANT]), "Fine."),
        ("", ""),
    ],
)
def test_answer_shapes(value: str, expected: str | None) -> None:
    assert answer_from(value) == expected


def test_any_value_converts_arrays_and_kvlists() -> None:
    value = AnyValue()
    item = value.array_value.values.add().kvlist_value.values.add()
    item.key = "id"
    item.value.int_value = 3
    value.array_value.values.add().double_value = 0.5
    assert any_value(value) == [{"id": 3}, 0.5]
    assert any_value(AnyValue()) is None


# ------------------------------------------------------------- malformed input


def _span(**fields: Any) -> ResourceSpans:
    rs = ResourceSpans()
    rs.scope_spans.add().spans.append(Span(**fields))
    return rs


def test_malformed_ids_are_rejected_with_a_reason_and_never_raise() -> None:
    good: dict[str, Any] = {"trace_id": b"\x01" * 16, "span_id": b"\x02" * 8, "name": "ok"}
    batch = [
        _span(**{**good, "trace_id": b"\x01" * 8}),
        _span(**{**good, "trace_id": bytes(16)}),
        _span(**{**good, "span_id": b""}),
        _span(**{**good, "parent_span_id": b"\x03" * 3}),
        _span(**good),
    ]
    mapped = SpanMapper().map(batch)
    assert [r for r, _ in mapped.rejected] == [
        "bad_trace_id",
        "bad_trace_id",
        "bad_span_id",
        "bad_parent_span_id",
    ]
    assert len(mapped.spans) == 1
    assert mapped.spans[0].trace_id == "01" * 16
    assert "\x01" not in " ".join(d for _, d in mapped.rejected)


def test_wrongly_typed_attributes_are_coerced_or_ignored() -> None:
    rec = o.Recorder("svc")
    root = rec.start(
        "retrieve",
        {
            "openinference.span.kind": "RETRIEVER",
            "input.value": "q?",
            "retrieval.documents.0.document.content": "text",
            "retrieval.documents.0.document.score": "0.7",  # a string
            "retrieval.documents.0.document.id": 17,  # an int
            "retrieval.documents.0.document.metadata": "{not json",
            "retrieval.documents.1.document.content": 42,  # not a string
            "retrieval.documents.1.document.score": True,  # a bool is no score
            "retrieval.documents.x.document.content": "bad index",
            "retrieval.documents.\u00b2.document.content": "not an ASCII digit",
            "retrieval.documents.99999.document.content": "index too large",
            "output.value": "a.",
        },
    )
    rec.end(root, 1)
    trace = one_trace(list(rec.request().resource_spans))
    assert chunk_tuples(trace) == [("17", "text", 0.7, None), ("1", "", None, None)]


_values = st.one_of(
    st.text(max_size=20),
    st.integers(),
    st.floats(allow_nan=True),
    st.booleans(),
    st.lists(st.text(max_size=5), max_size=3),
    st.sampled_from(["{", "[", '{"query": 1}', '[{"role": 2}]', '{"messages": "x"}', "null"]),
)
_keys = st.sampled_from(
    [
        "openinference.span.kind",
        "input.value",
        "output.value",
        "llm.model_name",
        "gen_ai.operation.name",
        "gen_ai.retrieval.documents",
        "gen_ai.output.messages",
        "gen_ai.input.messages",
        "gen_ai.completion",
        "retrieval.documents.0.document.content",
        "retrieval.documents.0.document.score",
        "retrieval.documents.1.document.metadata",
        "reranker.output_documents.0.document.id",
        "llm.output_messages.0.message.content",
        "llm.output_messages.0.message.contents.0.message_content.text",
        "gen_ai.completion.0.content",
        "annotations.0.annotation.label",
        "annotations.0.annotation.score",
        "annotations.0.annotation.annotator_kind",
        "feedback.span_id",
        "tag.tags",
        "metadata",
    ]
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.dictionaries(_keys, _values, max_size=8), min_size=1, max_size=3))
def test_arbitrary_attribute_values_never_raise(span_attrs: list[dict[str, Any]]) -> None:
    rec = o.Recorder("fuzz")
    root = rec.start("root", {"openinference.span.kind": "CHAIN"})
    for i, attrs in enumerate(span_attrs):
        child = rec.start(f"child{i}", {k: v for k, v in attrs.items() if v != []}, parent=root)
        rec.end(child, 1)
    rec.end(root, 2)
    assembler = TraceAssembler(AssemblySettings(settle_s=0))
    assembler.add(list(rec.request().resource_spans), 0.0)
    assembler.drain()


def test_llm_only_trace_reads_the_query_from_the_prompt_template_variables() -> None:
    rec = o.Recorder("svc")
    llm = rec.start(
        "OpenAI.chat",
        {
            "openinference.span.kind": "LLM",
            "llm.prompt_template.variables": json.dumps(
                {"context_str": "ctx", "query_str": "How?"}
            ),
            **o.oi_messages("llm.input_messages", [("user", "Context: ctx\nQuery: How?")]),
            **o.oi_messages("llm.output_messages", [("assistant", "Fine.")]),
        },
    )
    rec.end(llm, 1)
    trace = one_trace(list(rec.request().resource_spans))
    assert (trace.query, trace.answer) == ("How?", "Fine.")


def test_a_trace_across_two_services_is_rooted_at_the_upstream_root() -> None:
    gateway = o.Recorder("gateway", seed=11, scope="opentelemetry.instrumentation.fastapi")
    root = gateway.start("POST /ask", {"http.route": "/ask"})
    call = gateway.start("POST rag", {"http.request.method": "POST"}, parent=root, at_ms=1)
    rag = o.Recorder("rag", seed=12)
    server = rag.start(
        "chain",
        {"openinference.span.kind": "CHAIN", "input.value": "q?", "output.value": "a."},
        remote_parent=call.get_span_context(),
        at_ms=2,
    )
    rag.end(server, 50)
    gateway.end(call, 51)
    gateway.end(root, 52)
    rag_spans = list(rag.request().resource_spans)
    alone = one_trace(rag_spans)  # the gateway's spans go elsewhere: a local root
    assert alone.metadata["root_span_id"] == o.hex_span(server)
    both = one_trace(rag_spans + list(gateway.request().resource_spans))
    assert both.metadata["root_span_id"] == o.hex_span(root)
    assert both.app == "gateway" and both.timestamp == o.T0_NS / 1e9
