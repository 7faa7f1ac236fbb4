"""The spans of one trace → a :class:`~sidecar.trace.Trace`.

Choices, in order of preference (the first that yields a value wins):

* **chunks** — the output documents of the last reranker; else the documents of
  the outermost retriever spans (a retriever nested in another retriever, as in
  fusion retrievers, is part of its parent's result), concatenated in start
  order; else a reranker's input documents.
* **query** — the retriever's query (``gen_ai.retrieval.query.text`` or its
  ``input.value``), the reranker's ``reranker.query``, the input of the root or
  of the outermost CHAIN/AGENT span, then the last user message of the LLM call.
* **answer** — the output of the last LLM call that ended by the time the root
  ended (LLM calls made inside EVALUATOR or GUARDRAIL spans are not answers),
  else the root's (or outermost chain's) ``output.value``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from ...trace import Chunk, Trace
from .conventions import AGENT, CHAIN, EVALUATOR, GUARDRAIL, LLM, RERANKER, RETRIEVER
from .feedback import Annotation, annotations_of, event_records, feedback_from
from .mapping import SpanInfo
from .values import (
    answer_from,
    as_text,
    chunks_from_genai,
    chunks_from_items,
    loads,
    messages_of,
    pick_message,
    query_from,
)

_NOT_ANSWERS: Final = frozenset({EVALUATOR, GUARDRAIL})
_RETRIEVERS: Final = frozenset({RETRIEVER})
_MODEL_KEYS: Final = (
    "llm.model_name",
    "llm.request.model_name",
    "gen_ai.request.model",
    "llm.response.model_name",
    "gen_ai.response.model",
)
_SESSION_KEYS: Final = (
    "session.id",
    "gen_ai.conversation.id",
    "traceloop.association.properties.session_id",
)
_USER_KEYS: Final = ("user.id", "enduser.id", "traceloop.association.properties.user_id")
_RETRIEVE_SUFFIXES: Final = (".retrieve", "._retrieve", ".aretrieve", "._aretrieve", ".invoke")


@dataclass(slots=True)
class Built:
    """A trace, or what it still lacks (``query``/``answer``) to become one."""

    trace: Trace | None
    missing: str | None
    answer_span_id: str | None = None


def build_trace(
    trace_id: str,
    spans: Mapping[str, SpanInfo],
    root: SpanInfo | None,
    *,
    prompt_version_keys: tuple[str, ...],
    extra_annotations: Iterable[Annotation] = (),
    assembled: str = "root",
    real_root: bool = True,
) -> Built:
    """Assemble a Trace from the spans of ``trace_id``, or report what is missing.

    ``real_root=False`` when ``root`` only stands in for a root that never came: then
    LLM calls ending after it still count as answers.
    """
    ordered = sorted(spans.values(), key=lambda s: (s.start_ns, s.end_ns))
    depth: dict[str, int] = {}

    def depth_of(span: SpanInfo) -> int:
        chain: list[SpanInfo] = []
        while span.span_id not in depth:
            parent = spans.get(span.parent_id)
            if parent is None or len(chain) > len(spans):
                depth[span.span_id] = 0
                break
            chain.append(span)
            span = parent
        level = depth[span.span_id]
        for item in reversed(chain):
            level += 1
            depth[item.span_id] = level
        return level

    def under(span: SpanInfo, kinds: frozenset[str]) -> bool:
        parent = spans.get(span.parent_id)
        for _ in range(len(spans)):
            if parent is None:
                return False
            if parent.kind in kinds:
                return True
            parent = spans.get(parent.parent_id)
        return False

    retrievers = [s for s in ordered if s.kind == RETRIEVER and not under(s, _RETRIEVERS)]
    rerankers = [s for s in ordered if s.kind == RERANKER]
    llms = [s for s in ordered if s.kind == LLM and not under(s, _NOT_ANSWERS)]
    entries = [root] if root is not None else []
    entries += sorted(
        (s for s in ordered if s.kind in (CHAIN, AGENT) and s is not root),
        key=lambda s: (depth_of(s), s.start_ns),
    )

    answer, answer_span = _answer(llms, entries, root.end_ns if root and real_root else None)
    if answer is None:
        return Built(None, "answer")
    query = _query(retrievers, rerankers, entries, answer_span or (llms[-1] if llms else None))
    if query is None:
        return Built(None, "query")
    chunks, retriever = _chunks(retrievers, rerankers)

    model_span = answer_span or (llms[-1] if llms else None)
    first = [s for s in (root, model_span) if s is not None]
    prompt_version = _first_attr([*first, *ordered], prompt_version_keys)
    if prompt_version is None:
        prompt_version = next(
            (s.resource_prompt_version for s in ordered if s.resource_prompt_version), None
        )
    app_meta = _app_metadata([*first, *ordered])
    if prompt_version is None and app_meta is not None:
        prompt_version = as_text(app_meta.get("prompt_version"))

    annotations = [a for s in sorted(ordered, key=lambda s: s.end_ns) for a in annotations_of(s)]
    annotations += extra_annotations
    evaluations = [r for s in ordered for r in event_records(s)]
    evaluations += [a.record() for a in annotations if not a.is_human]

    span_kinds: dict[str, int] = {}
    for span in ordered:
        if span.kind:
            span_kinds[span.kind] = span_kinds.get(span.kind, 0) + 1
    metadata: dict[str, Any] = {
        "format": "otlp",
        "convention": (
            "openinference" if any(s.convention == "openinference" for s in ordered) else "genai"
        ),
        "assembled": assembled,
        "span_count": len(ordered),
        "span_kinds": span_kinds,
    }
    optional = {
        "root_span_id": root.span_id if root else None,
        "answer_span_id": answer_span.span_id if answer_span else None,
        "session_id": _first_attr([*first, *ordered], _SESSION_KEYS),
        "user_id": _first_attr([*first, *ordered], _USER_KEYS),
        "tags": _tags(ordered) or None,
        "error_spans": sum(1 for s in ordered if s.error) or None,
        "evaluations": evaluations or None,
        "app_metadata": app_meta,
    }
    metadata.update((k, v) for k, v in optional.items() if v is not None)

    start = root.start_ns if root is not None else min(s.start_ns for s in ordered)
    trace = Trace(
        trace_id=trace_id,
        timestamp=start / 1e9,
        app=next((s.service for s in first + ordered if s.service), None),
        model=_first_attr([model_span], _MODEL_KEYS) if model_span else None,
        prompt_version=prompt_version,
        retriever=retriever,
        query=query,
        answer=answer,
        chunks=chunks,
        feedback=feedback_from(annotations),
        metadata=metadata,
    )
    return Built(trace, None, answer_span.span_id if answer_span else None)


def _chunks(
    retrievers: list[SpanInfo], rerankers: list[SpanInfo]
) -> tuple[list[Chunk], str | None]:
    label = _retriever_label(retrievers[0]) if retrievers else None
    for reranker in sorted(rerankers, key=lambda s: s.end_ns, reverse=True):
        items = reranker.items("reranker.output_documents")
        if items:
            return chunks_from_items(items), label
    chunks: list[Chunk] = []
    for retriever in retrievers:
        items = retriever.items("retrieval.documents")
        if items:
            chunks += chunks_from_items(items)
        elif "gen_ai.retrieval.documents" in retriever.attrs:
            chunks += chunks_from_genai(retriever.attrs["gen_ai.retrieval.documents"])
        elif "traceloop.entity.output" in retriever.attrs:
            chunks += chunks_from_genai(retriever.attrs["traceloop.entity.output"])
    if not chunks:
        for reranker in rerankers:
            chunks += chunks_from_items(reranker.items("reranker.input_documents"))
    return chunks, label


def _retriever_label(span: SpanInfo) -> str | None:
    source = as_text(span.attrs.get("gen_ai.data_source.id")) or as_text(
        span.attrs.get("traceloop.entity.name")
    )
    if source:
        return source
    name = span.name
    for suffix in _RETRIEVE_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name or None


def _answer(
    llms: list[SpanInfo], entries: list[SpanInfo], limit: int | None
) -> tuple[str | None, SpanInfo | None]:
    for span in sorted(llms, key=lambda s: (s.end_ns, s.start_ns), reverse=True):
        if limit is not None and span.end_ns > limit:
            continue
        text = llm_output(span)
        if text is not None:
            return text, span
    for span in entries:
        for key in ("output.value", "traceloop.entity.output"):
            value = span.attrs.get(key)
            if value is not None:
                text = answer_from(value)
                if text is not None:
                    return text, None
    return None, None


def llm_output(span: SpanInfo) -> str | None:
    """The text an LLM call returned (the first choice), in any supported convention."""
    for name in ("llm.output_messages", "gen_ai.completion", "llm.choices"):
        items = span.items(name)
        if items:
            text = pick_message(items, "assistant", last=False)
            if text is not None:
                return text
    attrs = span.attrs
    if "gen_ai.output.messages" in attrs:
        text = pick_message(messages_of(attrs["gen_ai.output.messages"]), "assistant", last=False)
        if text is not None:
            return text
    if "gen_ai.completion" in attrs:
        text = answer_from(attrs["gen_ai.completion"])
        if text is not None:
            return text
    value = attrs.get("output.value")
    if isinstance(value, str) and attrs.get("output.mime_type") != "application/json":
        return value
    return None


def _llm_query(span: SpanInfo) -> str | None:
    variables = span.attrs.get("llm.prompt_template.variables")  # e.g. {"query_str": …}
    if variables is not None:
        text = query_from(variables)
        if text is not None:
            return text
    for name in ("llm.input_messages", "gen_ai.prompt", "llm.prompts"):
        items = span.items(name)
        if items:
            return pick_message(items, "user", last=True)
    for key in ("gen_ai.input.messages", "gen_ai.prompt"):
        if key in span.attrs:
            text = pick_message(messages_of(span.attrs[key]), "user", last=True)
            if text is not None:
                return text
    return None


def _query(
    retrievers: list[SpanInfo],
    rerankers: list[SpanInfo],
    entries: list[SpanInfo],
    llm: SpanInfo | None,
) -> str | None:
    for span in retrievers:
        for key in ("gen_ai.retrieval.query.text", "input.value", "traceloop.entity.input"):
            if key in span.attrs and (text := query_from(span.attrs[key])):
                return text
    for span in rerankers:
        for key in ("reranker.query", "input.value"):
            if key in span.attrs and (text := query_from(span.attrs[key])):
                return text
    for span in entries:
        for key in ("input.value", "traceloop.entity.input"):
            if key in span.attrs and (text := query_from(span.attrs[key])):
                return text
    if llm is not None:
        text = _llm_query(llm)
        if text and text.strip():
            return text
    return None


def _first_attr(spans: Iterable[SpanInfo | None], keys: tuple[str, ...]) -> str | None:
    for span in spans:
        if span is None:
            continue
        attrs = span.attrs
        for key in keys:
            value = attrs.get(key)
            if value is not None and (text := as_text(value)):
                return text
    return None


def _app_metadata(spans: Iterable[SpanInfo]) -> dict[str, Any] | None:
    for span in spans:
        value = span.attrs.get("metadata")
        if isinstance(value, str):
            value = loads(value)
        if isinstance(value, dict) and value:
            return value
    return None


def _tags(spans: Iterable[SpanInfo]) -> list[str]:
    tags: list[str] = []
    for span in spans:
        value = span.attrs.get("tag.tags")
        if isinstance(value, str):
            value = loads(value) if value.startswith("[") else [value]
        if isinstance(value, list):
            tags += [t for t in value if isinstance(t, str) and t not in tags]
    return tags
