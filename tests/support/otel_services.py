"""One RAG request across two services, each exporting its own spans (distributed traces)."""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry import trace as trace_api
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from .otel_spans import Recorder, hex_trace

QUERY = "How do I reset my password?"
ANSWER = "Open Settings > Security."


@dataclass
class TwoServices:
    """A gateway's plain HTTP root span and a worker's OpenInference spans below it."""

    trace_id: str
    gateway: ExportTraceServiceRequest
    worker: ExportTraceServiceRequest


def gateway_and_worker(*, seed: int = 11) -> TwoServices:
    """``POST /ask`` on the gateway (no AI attribute) calls the RAG worker (chain, retriever,
    LLM): each service's BatchSpanProcessor exports its spans separately."""
    gw = Recorder("gateway", seed=seed, scope="opentelemetry.instrumentation.fastapi")
    root = gw.start(
        "POST /ask",
        {"http.request.method": "POST", "url.path": "/ask"},
        kind=trace_api.SpanKind.SERVER,
    )
    wk = Recorder("rag-worker", seed=seed + 1)
    chain = wk.start(
        "query",
        {"openinference.span.kind": "CHAIN", "input.value": QUERY},
        remote_parent=root.get_span_context(),
        at_ms=5,
    )
    retriever = wk.start(
        "retrieve",
        {
            "openinference.span.kind": "RETRIEVER",
            "input.value": QUERY,
            "retrieval.documents.0.document.id": "kb-1",
            "retrieval.documents.0.document.content": "Open Settings > Security to reset it.",
        },
        parent=chain,
        at_ms=6,
    )
    wk.end(retriever, 20)
    llm = wk.start(
        "llm",
        {
            "openinference.span.kind": "LLM",
            "llm.model_name": "gpt-4o-mini",
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.content": ANSWER,
        },
        parent=chain,
        at_ms=21,
    )
    wk.end(llm, 400)
    chain.set_attribute("output.value", ANSWER)
    wk.end(chain, 401)
    gw.end(root, 402)
    return TwoServices(hex_trace(root), gw.request(), wk.request())
