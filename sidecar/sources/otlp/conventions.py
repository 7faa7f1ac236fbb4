"""Attribute names and span kinds of the conventions the OTLP source reads.

OpenInference (Arize; LlamaIndex, LangChain, … instrumentations), the OpenTelemetry
GenAI semantic conventions and OpenLLMetry (Traceloop). Span kinds use the
OpenInference vocabulary; GenAI operations and OpenLLMetry kinds map onto it.
"""

from __future__ import annotations

from typing import Final, Literal

Convention = Literal["openinference", "genai"]

RETRIEVER: Final = "RETRIEVER"
RERANKER: Final = "RERANKER"
LLM: Final = "LLM"
CHAIN: Final = "CHAIN"
AGENT: Final = "AGENT"
EVALUATOR: Final = "EVALUATOR"
GUARDRAIL: Final = "GUARDRAIL"

GENAI_KINDS: Final = {
    "retrieval": RETRIEVER,
    "chat": LLM,
    "text_completion": LLM,
    "generate_content": LLM,
    "embeddings": "EMBEDDING",
    "execute_tool": "TOOL",
    "invoke_agent": AGENT,
    "create_agent": AGENT,
    "invoke_workflow": CHAIN,
    "plan": CHAIN,
    # OpenLLMetry's extensions (its LangChain handler: chains and retrievers)
    "execute_task": CHAIN,
    "vector_db_retrieve": RETRIEVER,
}
TRACELOOP_KINDS: Final = {"workflow": CHAIN, "task": CHAIN, "agent": AGENT, "tool": "TOOL"}

# Target of a feedback carrier span, when not given by a span link.
TARGET_TRACE_KEYS: Final = ("annotation.trace_id", "feedback.trace_id", "target.trace_id")
TARGET_SPAN_KEYS: Final = ("annotation.span_id", "feedback.span_id", "target.span_id")

EXACT: Final = frozenset(
    {
        # OpenInference
        "openinference.span.kind",
        "input.value",
        "input.mime_type",
        "output.value",
        "output.mime_type",
        "llm.model_name",
        "llm.request.model_name",
        "llm.response.model_name",
        "llm.prompt_template.version",
        "llm.prompt_template.variables",
        "reranker.query",
        "reranker.model_name",
        "session.id",
        "user.id",
        "metadata",
        "tag.tags",
        # OTel GenAI
        "gen_ai.operation.name",
        "gen_ai.data_source.id",
        "gen_ai.request.top_k",
        "gen_ai.retrieval.query.text",
        "gen_ai.retrieval.documents",
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.prompt",
        "gen_ai.completion",
        "gen_ai.request.model",
        "gen_ai.response.model",
        "gen_ai.conversation.id",
        # OpenLLMetry
        "llm.request.type",
        "traceloop.span.kind",
        "traceloop.entity.input",
        "traceloop.entity.output",
        "traceloop.entity.name",
        "traceloop.association.properties.session_id",
        "traceloop.association.properties.user_id",
        # general
        "enduser.id",
        *TARGET_TRACE_KEYS,
        *TARGET_SPAN_KEYS,
    }
)

# Indexed lists: ``<list>.<i>.<element>.<field>`` (OpenInference) or
# ``<list>.<i>.<field>`` (OpenLLMetry's gen_ai.prompt / gen_ai.completion). Kept
# flat while mapping (cheap), grouped by :meth:`SpanInfo.items` when used.
LIST_PREFIXES: Final = (
    "retrieval.documents.",
    "reranker.input_documents.",
    "reranker.output_documents.",
    "llm.input_messages.",
    "llm.output_messages.",
    "llm.prompts.",
    "llm.choices.",
)
GENAI_LIST_PREFIXES: Final = ("gen_ai.prompt.", "gen_ai.completion.")
ANNOTATION_PREFIXES: Final = (
    "annotations.",
    "evaluations.",
    "trace.annotations.",
    "trace.evaluations.",
)
ELEMENTS: Final = frozenset(
    {"document", "message", "prompt", "completion", "annotation", "evaluation"}
)
ANNOTATION_LISTS: Final = (
    "annotations",
    "evaluations",
    "trace.annotations",
    "trace.evaluations",
)

EVAL_EVENT: Final = "gen_ai.evaluation.result"
EVAL_KEYS: Final = {
    "gen_ai.evaluation.name": "name",
    "gen_ai.evaluation.score.value": "score",
    "gen_ai.evaluation.score.label": "label",
    "gen_ai.evaluation.explanation": "explanation",
}
# Older GenAI conventions carried contents on span events.
CONTENT_EVENTS: Final = {
    "gen_ai.content.prompt": "gen_ai.prompt",
    "gen_ai.content.completion": "gen_ai.completion",
}
# GenAI 1.28-1.36 message events recorded as span events (Azure AI Inference, …): the
# message as JSON in ``gen_ai.event.content``, its role from the event name.
EVENT_CONTENT: Final = "gen_ai.event.content"
CHOICE_EVENT: Final = "gen_ai.choice"
MESSAGE_EVENTS: Final = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
    CHOICE_EVENT: "assistant",
}
