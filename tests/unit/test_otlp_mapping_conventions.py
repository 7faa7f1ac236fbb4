"""OTLP span mapping against what real instrumentations emit today: OpenLLMetry's
LangChain callback handler, GenAI message span events (Azure AI Inference and other
SDKs), OpenInference's completions-API attributes."""

from __future__ import annotations

import json
from typing import Any

from sidecar.sources.otlp import AssemblySettings, TraceAssembler
from sidecar.trace import Trace
from tests.support import otel_spans as o


def one_trace(rec: o.Recorder) -> Trace:
    assembler = TraceAssembler(AssemblySettings(settle_s=0))
    out = assembler.add(list(rec.request().resource_spans), 0.0)
    assert out.rejected == []
    assert len(out.traces) == 1, assembler.stats
    return out.traces[0]


def test_openllmetry_langchain_retriever_chain_and_string_input() -> None:
    """OpenLLMetry's LangChain handler: chains are ``execute_task``, retrievers
    ``vector_db_retrieve`` with the query and documents in ``traceloop.entity.*``."""
    rec = o.Recorder("lc-app", scope="opentelemetry.instrumentation.langchain")
    root = rec.start(
        "RunnableSequence.workflow",
        {
            "traceloop.span.kind": "workflow",
            "gen_ai.operation.name": "execute_task",
            "traceloop.entity.input": json.dumps(
                {"inputs": o.QUERY, "tags": [], "metadata": {}, "kwargs": {"name": "seq"}}
            ),
        },
    )
    docs = [{"page_content": d[1], "metadata": {"source": d[3], "id": d[0]}} for d in o.DOCS]
    retriever = rec.start(
        "vector_db_retrieve VectorStoreRetriever",
        {
            "gen_ai.operation.name": "vector_db_retrieve",
            "gen_ai.provider.name": "langchain",
            "traceloop.span.kind": "task",
            "traceloop.entity.name": "VectorStoreRetriever",
            "traceloop.entity.input": json.dumps(
                {"query": o.QUERY, "tags": ["x"], "metadata": {}, "kwargs": {}}
            ),
            "traceloop.entity.output": json.dumps({"documents": docs, "count": len(docs)}),
        },
        parent=root,
        at_ms=1,
    )
    rec.end(retriever, 20)
    prompt = f"Context: {o.DOCS[0][1]}\nQuestion: {o.QUERY}"
    llm = rec.start(
        "ChatOpenAI.chat",
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.input.messages": json.dumps(
                [{"role": "user", "parts": [{"type": "text", "content": prompt}]}]
            ),
            "gen_ai.output.messages": json.dumps(
                [{"role": "assistant", "parts": [{"type": "text", "content": o.ANSWER}]}]
            ),
        },
        parent=root,
        at_ms=21,
    )
    rec.end(llm, 300)
    root.set_attribute(
        "traceloop.entity.output", json.dumps({"outputs": o.ANSWER, "kwargs": {"tags": []}})
    )
    rec.end(root, 301)
    trace = one_trace(rec)
    assert trace.query == o.QUERY
    assert trace.answer == o.ANSWER
    assert [(c.id, c.text, c.source) for c in trace.chunks] == [(d[0], d[1], d[3]) for d in o.DOCS]
    assert trace.retriever == "VectorStoreRetriever"
    assert trace.metadata["span_kinds"] == {"CHAIN": 1, "RETRIEVER": 1, "LLM": 1}


def test_openllmetry_string_inputs_and_outputs_of_a_chain() -> None:
    rec = o.Recorder("lc-app", scope="opentelemetry.instrumentation.langchain")
    root = rec.start(
        "RunnableSequence.workflow",
        {
            "traceloop.span.kind": "workflow",
            "gen_ai.operation.name": "execute_task",
            "traceloop.entity.input": json.dumps({"inputs": "How?", "tags": [], "kwargs": {}}),
            "traceloop.entity.output": json.dumps({"outputs": "Fine.", "kwargs": {}}),
        },
    )
    rec.end(root, 5)
    trace = one_trace(rec)
    assert (trace.query, trace.answer) == ("How?", "Fine.")


def _message_event(span: Any, name: str, body: dict[str, Any]) -> None:
    span.add_event(
        name, {"gen_ai.system": "az.ai.inference", "gen_ai.event.content": json.dumps(body)}
    )


def test_genai_message_span_events_carry_the_prompt_and_the_answer() -> None:
    """Azure AI Inference (and GenAI 1.28-1.36 event emitters) record messages as span
    events ``gen_ai.<role>.message`` / ``gen_ai.choice`` with ``gen_ai.event.content``."""
    rec = o.Recorder("azure-app", scope="azure.ai.inference")
    chat = rec.start(
        "chat gpt-4o",
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.system": "az.ai.inference",
            "gen_ai.request.model": "gpt-4o",
        },
    )
    _message_event(chat, "gen_ai.system.message", {"role": "system", "content": "Be brief."})
    _message_event(chat, "gen_ai.user.message", {"role": "user", "content": o.QUERY})
    _message_event(
        chat,
        "gen_ai.choice",
        {"finish_reason": "stop", "index": 0, "message": {"content": o.ANSWER}},
    )
    rec.end(chat, 10)
    trace = one_trace(rec)
    assert (trace.query, trace.answer, trace.model) == (o.QUERY, o.ANSWER, "gpt-4o")


def test_genai_message_events_without_operation_name_make_an_llm_span() -> None:
    """GenAI 1.28 event bodies: ``{"content": …}`` (role from the event name)."""
    rec = o.Recorder("svc", scope="some.sdk")
    chat = rec.start("chat", {"gen_ai.system": "openai", "gen_ai.request.model": "m"})
    _message_event(chat, "gen_ai.user.message", {"content": "How?"})
    _message_event(chat, "gen_ai.assistant.message", {"content": "earlier turn"})
    _message_event(
        chat, "gen_ai.choice", {"index": 0, "message": {"role": "assistant", "content": "Fine."}}
    )
    rec.end(chat, 3)
    trace = one_trace(rec)
    assert (trace.query, trace.answer) == ("How?", "Fine.")
    assert trace.metadata["span_kinds"] == {"LLM": 1}


def test_genai_message_attributes_win_over_message_events() -> None:
    rec = o.Recorder("svc", scope="some.sdk")
    messages = [{"role": "assistant", "parts": [{"type": "text", "content": "From attr."}]}]
    chat = rec.start(
        "chat",
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.input.messages": json.dumps([{"role": "user", "content": "How?"}]),
            "gen_ai.output.messages": json.dumps(messages),
        },
    )
    _message_event(chat, "gen_ai.choice", {"index": 0, "message": {"content": "From event."}})
    rec.end(chat, 3)
    assert one_trace(rec).answer == "From attr."


def test_openinference_completions_api_prompts_and_choices() -> None:
    """OpenInference OpenAI completions: ``llm.prompts.N.prompt.text`` and
    ``llm.choices.N.completion.text``; input/output values are the raw JSON bodies."""
    rec = o.Recorder("svc", scope="openinference.instrumentation.openai")
    root = rec.start("chain", {"openinference.span.kind": "CHAIN"})
    llm = rec.start(
        "Completions",
        {
            "openinference.span.kind": "LLM",
            "llm.model_name": "gpt-3.5-turbo-instruct",
            "input.value": json.dumps({"model": "gpt-3.5-turbo-instruct", "max_tokens": 5}),
            "input.mime_type": "application/json",
            "llm.prompts.0.prompt.text": "How?",
            "llm.choices.0.completion.text": "Fine.",
            "output.value": json.dumps({"choices": [{"index": 0, "text": "Fine."}]}),
            "output.mime_type": "application/json",
        },
        parent=root,
        at_ms=1,
    )
    rec.end(llm, 5)
    rec.end(root, 6)
    trace = one_trace(rec)
    assert (trace.query, trace.answer) == ("How?", "Fine.")
    assert trace.metadata["answer_span_id"] == o.hex_span(llm)
