"""Real OpenTelemetry spans for OTLP tests.

Spans are made with the opentelemetry-sdk (a TracerProvider with an in-memory
exporter, seeded ids, explicit timestamps), attributes set the way the
instrumentations set them (OpenInference for LlamaIndex/LangChain, OTel GenAI,
OpenLLMetry), then encoded exactly as the OTLP exporters do
(``encode_spans`` → ``ExportTraceServiceRequest``).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace as trace_api
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import Link, SpanContext, TraceFlags

T0_NS = 1_795_168_800_000_000_000  # 2026-11-20T10:00:00Z

QUERY = "How do I reset my password?"
ANSWER = "Open Settings, choose Security and click Reset password [1]."
DOCS = [
    ("kb-1", "To reset your password open Settings, choose Security.", 0.82, "kb/security.md"),
    ("kb-2", "Passwords must have at least 12 characters.", 0.61, "kb/policy.md"),
    ("kb-3", "Two-factor authentication adds a second step.", 0.44, "kb/2fa.md"),
]


class _SeededIds(IdGenerator):
    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)

    def generate_span_id(self) -> int:
        return self._rng.getrandbits(64) or 1

    def generate_trace_id(self) -> int:
        return self._rng.getrandbits(128) or 1


class Recorder:
    """Creates finished SDK spans with explicit times (milliseconds after ``T0_NS``)."""

    def __init__(
        self,
        service: str | None = "rag-api",
        *,
        seed: int = 1,
        scope: str = "openinference.instrumentation.llama_index",
        resource: dict[str, Any] | None = None,
    ) -> None:
        attrs = dict(resource or {})
        if service is not None:
            attrs["service.name"] = service
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider(
            resource=Resource.create(attrs), id_generator=_SeededIds(seed)
        )
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer(scope)

    def start(
        self,
        name: str,
        attrs: dict[str, Any] | None = None,
        *,
        parent: trace_api.Span | None = None,
        remote_parent: SpanContext | None = None,
        at_ms: float = 0,
        links: Sequence[trace_api.Span] = (),
        kind: trace_api.SpanKind = trace_api.SpanKind.INTERNAL,
    ) -> trace_api.Span:
        """Start a span (a root when neither parent is given)."""
        if parent is not None:
            ctx = trace_api.set_span_in_context(parent)
        elif remote_parent is not None:  # as extracted from a traceparent header
            remote = SpanContext(
                remote_parent.trace_id,
                remote_parent.span_id,
                is_remote=True,
                trace_flags=TraceFlags(TraceFlags.SAMPLED),
            )
            ctx = trace_api.set_span_in_context(trace_api.NonRecordingSpan(remote))
        else:
            ctx = trace_api.set_span_in_context(trace_api.INVALID_SPAN)
        return self.tracer.start_span(
            name,
            context=ctx,
            kind=kind,
            attributes=attrs,
            links=[Link(s.get_span_context()) for s in links],
            start_time=T0_NS + int(at_ms * 1_000_000),
        )

    @staticmethod
    def end(span: trace_api.Span, at_ms: float) -> None:
        """End a span at ``at_ms``."""
        span.end(end_time=T0_NS + int(at_ms * 1_000_000))

    def finished(self) -> list[ReadableSpan]:
        """Spans ended so far, in end order (as a BatchSpanProcessor would export them)."""
        return list(self.exporter.get_finished_spans())

    def request(self) -> ExportTraceServiceRequest:
        """The export request the OTLP exporters would send for the finished spans."""
        return encode_spans(self.finished())


def hex_trace(span: trace_api.Span) -> str:
    """The 32-hex trace id of a span."""
    return f"{span.get_span_context().trace_id:032x}"


def hex_span(span: trace_api.Span) -> str:
    """The 16-hex span id of a span."""
    return f"{span.get_span_context().span_id:016x}"


@dataclass
class RagRequest:
    """One instrumented request: its export request and the ids tests look for."""

    request: ExportTraceServiceRequest
    trace_id: str
    root_span_id: str
    answer_span_id: str | None = None
    spans: dict[str, trace_api.Span] = field(default_factory=dict)

    @property
    def resource_spans(self) -> list[ResourceSpans]:
        """The request's ResourceSpans, as the receiver hands them over."""
        return list(self.request.resource_spans)


def oi_documents(prefix: str, docs: Iterable[tuple[Any, ...]], **opts: bool) -> dict[str, Any]:
    """Flattened OpenInference documents: ``<prefix>.{i}.document.id|content|score|metadata``.

    Options: ``ids``/``scores`` (default True) write ``document.id``/``document.score``;
    ``ids_in_metadata`` puts the id into the metadata JSON as ``doc_id``.
    """
    attrs: dict[str, Any] = {}
    for i, (doc_id, text, score, source) in enumerate(docs):
        key = f"{prefix}.{i}.document"
        attrs[f"{key}.content"] = text
        meta: dict[str, Any] = {"file_path": source, "page_label": "1"}
        if opts.get("ids", True):
            attrs[f"{key}.id"] = doc_id
        if opts.get("ids_in_metadata", False):
            meta = {"source": source, "doc_id": doc_id}
        if opts.get("scores", True) and score is not None:
            attrs[f"{key}.score"] = score
        attrs[f"{key}.metadata"] = json.dumps(meta)
    return attrs


def oi_messages(prefix: str, messages: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Flattened OpenInference messages: ``<prefix>.{i}.message.role|content``."""
    attrs: dict[str, Any] = {}
    for i, (role, content) in enumerate(messages):
        attrs[f"{prefix}.{i}.message.role"] = role
        attrs[f"{prefix}.{i}.message.content"] = content
    return attrs


def _prompt(query: str, docs: Sequence[tuple[Any, ...]]) -> str:
    context = "\n".join(d[1] for d in docs)
    return f"Context information is below.\n{context}\nQuery: {query}\nAnswer: "


def llama_index_rag(
    *,
    seed: int = 1,
    query: str = QUERY,
    answer: str = ANSWER,
    docs: Sequence[tuple[Any, ...]] = DOCS,
    reranked: Sequence[int] | None = (1, 0),
    root_output: str | None = None,
    llm_output: bool = True,
    model: str = "gpt-4o-mini",
    prompt_version: str | None = "v3",
    remote_parent: bool = False,
    service: str = "support-bot",
) -> RagRequest:
    """OpenInference LlamaIndex query engine: CHAIN → RETRIEVER (+EMBEDDING) → RERANKER →
    CHAIN (synthesize) → LLM. ``reranked`` lists the retriever ranks the reranker keeps."""
    rec = Recorder(service, seed=seed)
    remote = None
    if remote_parent:
        remote = SpanContext(0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, False)
    root_attrs: dict[str, Any] = {
        "openinference.span.kind": "CHAIN",
        "input.value": query,
        "session.id": "sess-42",
        "user.id": "user-7",
        "tag.tags": ("prod", "kb"),
        "metadata": json.dumps({"tenant": "acme"}),
    }
    root = rec.start("RetrieverQueryEngine.query", root_attrs, remote_parent=remote)
    retriever = rec.start(
        "VectorIndexRetriever.retrieve",
        {
            "openinference.span.kind": "RETRIEVER",
            "input.value": query,
            **oi_documents("retrieval.documents", docs),
        },
        parent=root,
        at_ms=1,
    )
    embed = rec.start(
        "OpenAIEmbedding.get_query_embedding",
        {"openinference.span.kind": "EMBEDDING", "embedding.model_name": "text-embedding-3-small"},
        parent=retriever,
        at_ms=2,
    )
    rec.end(embed, 40)
    rec.end(retriever, 60)
    final_docs = list(docs)
    if reranked is not None:
        kept = [
            (*docs[i][:2], round(0.99 - 0.1 * n, 2), docs[i][3]) for n, i in enumerate(reranked)
        ]
        final_docs = kept
        rerank = rec.start(
            "CohereRerank.postprocess_nodes",
            {
                "openinference.span.kind": "RERANKER",
                "reranker.query": query,
                "reranker.model_name": "rerank-english-v3.0",
                "reranker.top_k": len(kept),
                **oi_documents("reranker.input_documents", docs),
                **oi_documents("reranker.output_documents", kept),
            },
            parent=root,
            at_ms=61,
        )
        rec.end(rerank, 90)
    synth = rec.start(
        "CompactAndRefine.synthesize",
        {"openinference.span.kind": "CHAIN", "input.value": query},
        parent=root,
        at_ms=91,
    )
    llm_attrs: dict[str, Any] = {
        "openinference.span.kind": "LLM",
        "llm.model_name": model,
        "llm.provider": "openai",
        "llm.token_count.prompt": 211,
        "llm.token_count.completion": 19,
        "llm.invocation_parameters": json.dumps({"temperature": 0.1}),
        **oi_messages(
            "llm.input_messages",
            [("system", "You are a helpful assistant."), ("user", _prompt(query, final_docs))],
        ),
    }
    if prompt_version is not None:
        llm_attrs["llm.prompt_template.version"] = prompt_version
    if llm_output:
        llm_attrs.update(oi_messages("llm.output_messages", [("assistant", answer)]))
        llm_attrs["output.value"] = json.dumps({"message": {"role": "assistant"}})
        llm_attrs["output.mime_type"] = "application/json"
    llm = rec.start(
        "OpenAI.chat", llm_attrs, parent=synth, at_ms=92, kind=trace_api.SpanKind.CLIENT
    )
    rec.end(llm, 900)
    synth.set_attribute("output.value", answer)
    rec.end(synth, 901)
    root.set_attribute("output.value", answer if root_output is None else root_output)
    rec.end(root, 905)
    return RagRequest(
        rec.request(),
        hex_trace(root),
        hex_span(root),
        hex_span(llm),
        {"root": root, "retriever": retriever, "llm": llm},
    )


def langchain_metadata_ids(*, seed: int = 2) -> RagRequest:
    """OpenInference LangChain RetrievalQA: JSON inputs/outputs, ids only in the documents'
    metadata (``doc_id``, ``source``), no scores."""
    rec = Recorder("qa-service", seed=seed, scope="openinference.instrumentation.langchain")
    root = rec.start(
        "RetrievalQA",
        {
            "openinference.span.kind": "CHAIN",
            "input.value": json.dumps({"query": QUERY}),
            "input.mime_type": "application/json",
            "metadata": json.dumps({"prompt_version": "lc-7"}),
        },
    )
    retriever = rec.start(
        "VectorStoreRetriever",
        {
            "openinference.span.kind": "RETRIEVER",
            "input.value": QUERY,
            **oi_documents(
                "retrieval.documents", DOCS, ids=False, scores=False, ids_in_metadata=True
            ),
        },
        parent=root,
        at_ms=1,
    )
    rec.end(retriever, 30)
    llm = rec.start(
        "ChatOpenAI",
        {
            "openinference.span.kind": "LLM",
            "llm.model_name": "gpt-4o",
            **oi_messages("llm.input_messages", [("user", _prompt(QUERY, DOCS))]),
            **oi_messages("llm.output_messages", [("assistant", ANSWER)]),
        },
        parent=root,
        at_ms=31,
    )
    rec.end(llm, 700)
    root.set_attribute("output.value", json.dumps({"query": QUERY, "result": ANSWER}))
    root.set_attribute("output.mime_type", "application/json")
    rec.end(root, 701)
    return RagRequest(rec.request(), hex_trace(root), hex_span(root), hex_span(llm))


def many_chains(*, seed: int = 3) -> RagRequest:
    """A LangChain conversational chain: many CHAIN/PROMPT spans, a condense-question LLM
    call, a retriever, the answering LLM call, then an EVALUATOR with its own LLM call."""
    rec = Recorder("chat-service", seed=seed, scope="openinference.instrumentation.langchain")
    root = rec.start(
        "ConversationalRetrievalChain",
        {
            "openinference.span.kind": "CHAIN",
            "input.value": json.dumps({"question": "and how long must it be?", "chat_history": []}),
            "input.mime_type": "application/json",
        },
    )
    t = 1.0
    spans: dict[str, trace_api.Span] = {}
    for i in range(6):  # glue: RunnableSequence / RunnableParallel / prompts
        kind = "PROMPT" if i % 2 else "CHAIN"
        glue = rec.start(f"Runnable{i}", {"openinference.span.kind": kind}, parent=root, at_ms=t)
        rec.end(glue, t + 1)
        t += 2
    condense = rec.start(
        "ChatOpenAI",
        {
            "openinference.span.kind": "LLM",
            "llm.model_name": "gpt-4o-mini",
            **oi_messages("llm.input_messages", [("user", "Rephrase: and how long must it be?")]),
            **oi_messages("llm.output_messages", [("assistant", "How long must a password be?")]),
        },
        parent=root,
        at_ms=t,
    )
    rec.end(condense, t + 100)
    retriever = rec.start(
        "VectorStoreRetriever",
        {
            "openinference.span.kind": "RETRIEVER",
            "input.value": "How long must a password be?",
            **oi_documents("retrieval.documents", DOCS[1:2]),
        },
        parent=root,
        at_ms=t + 101,
    )
    rec.end(retriever, t + 120)
    stuff = rec.start(
        "StuffDocumentsChain", {"openinference.span.kind": "CHAIN"}, parent=root, at_ms=t + 121
    )
    answer_llm = rec.start(
        "ChatOpenAI",
        {
            "openinference.span.kind": "LLM",
            "llm.model_name": "gpt-4o",
            **oi_messages("llm.input_messages", [("user", "Context ... Question ...")]),
            **oi_messages("llm.output_messages", [("assistant", "At least 12 characters.")]),
        },
        parent=stuff,
        at_ms=t + 122,
    )
    rec.end(answer_llm, t + 500)
    rec.end(stuff, t + 501)
    evaluator = rec.start(
        "faithfulness-check", {"openinference.span.kind": "EVALUATOR"}, parent=root, at_ms=t + 502
    )
    judge = rec.start(
        "ChatOpenAI",
        {
            "openinference.span.kind": "LLM",
            "llm.model_name": "gpt-4o-mini",
            **oi_messages("llm.output_messages", [("assistant", '{"faithful": true}')]),
        },
        parent=evaluator,
        at_ms=t + 503,
    )
    rec.end(judge, t + 700)
    rec.end(evaluator, t + 701)
    rec.end(root, t + 702)
    spans.update(condense=condense, answer=answer_llm, judge=judge)
    return RagRequest(rec.request(), hex_trace(root), hex_span(root), hex_span(answer_llm), spans)


def genai_rag(*, seed: int = 4, structured_documents: bool = False) -> RagRequest:
    """OTel GenAI conventions under an HTTP server root: ``retrieval kb-index`` then
    ``chat gpt-4o-mini`` carrying a ``gen_ai.evaluation.result`` event."""
    rec = Recorder("genai-rag", seed=seed, scope="opentelemetry.instrumentation.openai_v2")
    root = rec.start(
        "POST /ask",
        {"http.request.method": "POST", "http.route": "/ask"},
        kind=trace_api.SpanKind.SERVER,
    )
    documents = [{"id": d[0], "score": d[2], "content": d[1], "source": d[3]} for d in DOCS]
    retrieval = rec.start(
        "retrieval kb-index",
        {
            "gen_ai.operation.name": "retrieval",
            "gen_ai.provider.name": "chroma",
            "gen_ai.data_source.id": "kb-index",
            "gen_ai.request.top_k": 3.0,
            "gen_ai.retrieval.query.text": QUERY,
            "gen_ai.retrieval.documents": json.dumps(documents),
        },
        parent=root,
        at_ms=1,
        kind=trace_api.SpanKind.CLIENT,
    )
    rec.end(retrieval, 20)
    chat = rec.start(
        "chat gpt-4o-mini",
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
            "gen_ai.conversation.id": "conv-9",
            "gen_ai.input.messages": json.dumps(
                [
                    {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]},
                    {"role": "user", "parts": [{"type": "text", "content": QUERY}]},
                ]
            ),
            "gen_ai.output.messages": json.dumps(
                [
                    {
                        "role": "assistant",
                        "parts": [{"type": "text", "content": ANSWER}],
                        "finish_reason": "stop",
                    }
                ]
            ),
            "prompt.version": "g-2",
        },
        parent=root,
        at_ms=21,
        kind=trace_api.SpanKind.CLIENT,
    )
    chat.add_event(
        "gen_ai.evaluation.result",
        {
            "gen_ai.evaluation.name": "Relevance",
            "gen_ai.evaluation.score.value": 0.9,
            "gen_ai.evaluation.score.label": "relevant",
            "gen_ai.evaluation.explanation": "On topic.",
        },
        timestamp=T0_NS + 400_000_000,
    )
    rec.end(chat, 400)
    rec.end(root, 401)
    request = rec.request()
    if structured_documents:
        _structure_documents(request, documents)
    return RagRequest(request, hex_trace(root), hex_span(root), hex_span(chat))


def _structure_documents(request: ExportTraceServiceRequest, docs: list[dict[str, Any]]) -> None:
    """Re-encode ``gen_ai.retrieval.documents`` in structured form (array of kvlists)."""
    for rs in request.resource_spans:
        for ss in rs.scope_spans:
            for span in ss.spans:
                for kv in span.attributes:
                    if kv.key == "gen_ai.retrieval.documents":
                        kv.value.Clear()
                        for doc in docs:
                            entry = kv.value.array_value.values.add().kvlist_value
                            for k, v in doc.items():
                                item = entry.values.add()
                                item.key = k
                                if isinstance(v, float):
                                    item.value.double_value = v
                                else:
                                    item.value.string_value = str(v)


def openllmetry_chat(*, seed: int = 5) -> RagRequest:
    """OpenLLMetry (Traceloop): a workflow span and an LLM span with indexed
    ``gen_ai.prompt.{i}`` / ``gen_ai.completion.{i}`` attributes."""
    rec = Recorder("llmetry-app", seed=seed, scope="opentelemetry.instrumentation.openai")
    root = rec.start(
        "answer_question.workflow",
        {
            "traceloop.span.kind": "workflow",
            "traceloop.entity.input": json.dumps({"args": [QUERY], "kwargs": {}}),
        },
    )
    llm = rec.start(
        "openai.chat",
        {
            "llm.request.type": "chat",
            "gen_ai.system": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.prompt.0.role": "user",
            "gen_ai.prompt.0.content": QUERY,
            "gen_ai.completion.0.role": "assistant",
            "gen_ai.completion.0.content": ANSWER,
        },
        parent=root,
        at_ms=1,
    )
    rec.end(llm, 300)
    root.set_attribute("traceloop.entity.output", json.dumps(ANSWER))
    rec.end(root, 301)
    return RagRequest(rec.request(), hex_trace(root), hex_span(root), hex_span(llm))


def feedback_carrier(
    target: RagRequest,
    *,
    label: str | None = "thumbs_down",
    score: float | None = 0,
    annotator_kind: str = "HUMAN",
    explanation: str | None = "Wrong menu name.",
    via: str = "link",
    seed: int = 99,
) -> RagRequest:
    """A span in its own trace carrying a human annotation about ``target``'s answer span,
    pointing at it with a span link (``via="link"``) or with ``feedback.trace_id`` /
    ``feedback.span_id`` attributes (``via="attribute"``)."""
    rec = Recorder("feedback-api", seed=seed)
    attrs: dict[str, Any] = {
        "annotations.0.annotation.name": "user_feedback",
        "annotations.0.annotation.annotator_kind": annotator_kind,
    }
    if label is not None:
        attrs["annotations.0.annotation.label"] = label
    if score is not None:
        attrs["annotations.0.annotation.score"] = score
    if explanation is not None:
        attrs["annotations.0.annotation.explanation"] = explanation
    links: list[trace_api.Span] = []
    if via == "link":
        links = [_remote_span(target.trace_id, target.answer_span_id or target.root_span_id)]
    else:
        attrs["feedback.trace_id"] = target.trace_id
        attrs["feedback.span_id"] = target.answer_span_id or target.root_span_id
    span = rec.start("user_feedback", attrs, links=links, at_ms=5_000)
    rec.end(span, 5_001)
    return RagRequest(rec.request(), hex_trace(span), hex_span(span))


def _remote_span(trace_id: str, span_id: str) -> trace_api.Span:
    ctx = SpanContext(int(trace_id, 16), int(span_id, 16), is_remote=True)
    return trace_api.NonRecordingSpan(ctx)


def merge(*requests: RagRequest | ExportTraceServiceRequest) -> ExportTraceServiceRequest:
    """One export request holding the spans of several."""
    out = ExportTraceServiceRequest()
    for item in requests:
        req = item.request if isinstance(item, RagRequest) else item
        out.resource_spans.extend(req.resource_spans)
    return out


def split_batches(
    request: RagRequest | ExportTraceServiceRequest, n: int, seed: int = 0
) -> list[list[ResourceSpans]]:
    """Spread one request's spans over ``n`` export batches in random order, each batch
    keeping the spans' resource and scope (as a collector's batch processor would)."""
    req = request.request if isinstance(request, RagRequest) else request
    flat = [
        (rs, ss, span) for rs in req.resource_spans for ss in rs.scope_spans for span in ss.spans
    ]
    random.Random(seed).shuffle(flat)
    size = max(1, -(-len(flat) // n))
    batches: list[list[ResourceSpans]] = []
    for start in range(0, len(flat), size):
        batch: list[ResourceSpans] = []
        for rs, ss, span in flat[start : start + size]:
            out_rs = ResourceSpans(resource=rs.resource, schema_url=rs.schema_url)
            out_rs.scope_spans.append(ScopeSpans(scope=ss.scope, spans=[span]))
            batch.append(out_rs)
        batches.append(batch)
    return batches
