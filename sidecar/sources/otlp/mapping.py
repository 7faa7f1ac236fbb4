"""OTLP spans → :class:`SpanInfo`: the few facts of a span that make a RAG trace.

Works on the decoded protobuf objects directly, one pass over each span's
attributes: keys of interest and indexed list attributes
(``retrieval.documents.{i}.document.content``, …) are kept as Python values,
everything else is skipped without being converted. Grouping the lists by index
and interpreting the values (JSON inputs, messages, documents, annotations) is
left for the spans a trace is built from (:meth:`SpanInfo.items`, :mod:`.values`).

Span kinds use the OpenInference vocabulary (``RETRIEVER``, ``RERANKER``,
``LLM``, ``CHAIN``, …); OTel GenAI operations and OpenLLMetry kinds are
translated into it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from sys import getsizeof
from typing import Any, Final

from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, Span

from .conventions import (
    ANNOTATION_PREFIXES,
    CHOICE_EVENT,
    CONTENT_EVENTS,
    ELEMENTS,
    EVAL_EVENT,
    EVAL_KEYS,
    EVENT_CONTENT,
    EXACT,
    GENAI_KINDS,
    GENAI_LIST_PREFIXES,
    LIST_PREFIXES,
    LLM,
    MESSAGE_EVENTS,
    RETRIEVER,
    TRACELOOP_KINDS,
    Convention,
)
from .values import loads

_REMOTE_PARENT: Final = 0x300  # SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE | SPAN_FLAGS_CONTEXT_IS_REMOTE
_STATUS_ERROR: Final = 2
_ZERO8: Final = bytes(8)
_ZERO16: Final = bytes(16)
_UNKNOWN_SERVICE: Final = "unknown_service"
# Memory a mapped span holds, approximately (checked with tracemalloc): a SpanInfo with its
# ids, name and dicts, then per kept attribute its key, its value and a Python object's overhead.
_SPAN_BYTES: Final = 800
_ITEM_BYTES: Final = 130

Items = dict[int, dict[str, Any]]


@dataclass(slots=True)
class SpanInfo:
    """What a span contributes to a RAG trace."""

    trace_id: str
    """32 lowercase hex characters."""
    span_id: str
    """16 lowercase hex characters."""
    parent_id: str
    """The parent span id, or ``""`` for a root span."""
    parent_remote: bool
    """The parent lives in another process (OTLP span flags): this span is a local root."""
    name: str
    start_ns: int
    end_ns: int
    service: str | None
    """``service.name`` of the resource (``unknown_service…`` becomes None)."""
    resource_prompt_version: str | None = None
    kind: str | None = None
    """OpenInference span kind (GenAI operations translated), upper case."""
    convention: Convention | None = None
    error: bool = False
    attrs: dict[str, Any] = field(default_factory=dict)
    """Attributes of interest, by key, as Python values."""
    flat: dict[str, Any] | None = None
    """Indexed list attributes (documents, messages, annotations), by full key."""
    genai_indexed: bool = False
    """Carries OpenLLMetry's ``gen_ai.prompt.{i}.*`` / ``gen_ai.completion.{i}.*``."""
    annotated: bool = False
    """Carries ``annotations.{i}.annotation.*`` (or ``evaluations.…``) attributes."""
    evaluations: list[dict[str, Any]] | None = None
    """``gen_ai.evaluation.result`` events, as ``{name, score, label, explanation}``."""
    links: list[tuple[str, str]] | None = None
    """Linked spans as ``(trace_id, span_id)`` hex pairs."""
    nbytes: int = 0
    """Approximate memory the span holds (for ``max_pending_bytes``)."""
    _lists: dict[str, Items] | None = None
    """Grouped lists, filled by :meth:`items`."""

    @property
    def is_root(self) -> bool:
        """No parent, or a parent in another process."""
        return not self.parent_id or self.parent_remote

    @property
    def is_ai(self) -> bool:
        """The span follows an AI convention or carries annotations or evaluations."""
        return self.convention is not None or self.annotated or bool(self.evaluations)

    def items(self, name: str) -> list[dict[str, Any]]:
        """The elements of an indexed list attribute (e.g. ``retrieval.documents``), in
        index order, each as ``{field: value}`` with the element prefix removed."""
        if self.flat is None:
            return []
        if self._lists is None:
            self._lists = {}
        found = self._lists.get(name)
        if found is None:
            found = self._lists[name] = _group(self.flat, name + ".")
        return [found[i] for i in sorted(found)]


def _group(flat: dict[str, Any], prefix: str) -> Items:
    """``<prefix><i>.[<element>.]<field>`` keys → index → field → value."""
    found: Items = {}
    size = len(prefix)
    for key, value in flat.items():
        if not key.startswith(prefix):
            continue
        index, _, tail = key[size:].partition(".")
        if not (index.isascii() and index.isdigit()) or not tail or len(index) > 4:
            continue
        element, dot, rest = tail.partition(".")
        fld = rest if dot and element in ELEMENTS else tail
        found.setdefault(int(index), {})[fld] = value
    return found


@dataclass(slots=True)
class MappedBatch:
    """Spans mapped from some ResourceSpans, and those refused."""

    spans: list[SpanInfo] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    """``(reason, detail)`` per malformed span; details never contain span content."""
    ignored: int = 0
    """Spans from ignored instrumentation scopes (e.g. the sidecar's own evaluator spans)."""


def any_value(value: AnyValue) -> Any:
    """An OTLP ``AnyValue`` as a Python value (arrays → lists, kvlists → dicts)."""
    which = value.WhichOneof("value")
    if which is None or which == "string_value_strindex":
        return None
    if which == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, which)


class SpanMapper:
    """Turns ``ResourceSpans`` into :class:`SpanInfo` records; never raises on bad spans."""

    def __init__(
        self,
        prompt_version_attribute: str = "prompt.version",
        ignored_scopes: Iterable[str] = (),
    ) -> None:
        self.prompt_version_attribute = prompt_version_attribute
        self._exact = EXACT | {prompt_version_attribute}
        self._ignored = frozenset(ignored_scopes)

    def map(self, resource_spans: Iterable[ResourceSpans]) -> MappedBatch:
        """Map every span of every ResourceSpans, in order."""
        out = MappedBatch()
        for rs in resource_spans:
            service: str | None = None
            prompt_version: str | None = None
            for kv in rs.resource.attributes:
                if kv.key == "service.name":
                    service = kv.value.string_value or None
                elif kv.key == self.prompt_version_attribute:
                    prompt_version = _scalar_text(any_value(kv.value))
            if service is not None and service.startswith(_UNKNOWN_SERVICE):
                service = None
            for ss in rs.scope_spans:
                if ss.scope.name in self._ignored:
                    out.ignored += len(ss.spans)
                    continue
                for span in ss.spans:
                    try:
                        info = self._span(span, service, prompt_version, out.rejected)
                    except Exception as exc:  # a malformed span must never stop the batch
                        out.rejected.append(("malformed_span", type(exc).__name__))
                        continue
                    if info is not None:
                        out.spans.append(info)
        return out

    def _span(
        self,
        span: Span,
        service: str | None,
        prompt_version: str | None,
        rejected: list[tuple[str, str]],
    ) -> SpanInfo | None:
        tid = span.trace_id
        if len(tid) != 16 or tid == _ZERO16:
            rejected.append(("bad_trace_id", f"trace_id has {len(tid)} bytes, expected 16"))
            return None
        sid = span.span_id
        if len(sid) != 8 or sid == _ZERO8:
            rejected.append(("bad_span_id", f"span_id has {len(sid)} bytes, expected 8"))
            return None
        pid = span.parent_span_id
        if pid and len(pid) != 8:
            rejected.append(("bad_parent_span_id", f"parent_span_id has {len(pid)} bytes"))
            return None
        info = SpanInfo(
            trace_id=tid.hex(),
            span_id=sid.hex(),
            parent_id=pid.hex() if pid and pid != _ZERO8 else "",
            parent_remote=(span.flags & _REMOTE_PARENT) == _REMOTE_PARENT,
            name=span.name,
            start_ns=span.start_time_unix_nano,
            end_ns=span.end_time_unix_nano,
            service=service,
            resource_prompt_version=prompt_version,
            error=span.status.code == _STATUS_ERROR,
        )
        attrs = info.attrs
        exact = self._exact
        flat: dict[str, Any] = {}
        kept = 0  # memory of the text attributes kept (non-ASCII: 2-4 bytes a character)
        for kv in span.attributes:
            key = kv.key
            if key in exact:
                value = kv.value
                text = value.string_value
                if text:
                    attrs[key] = text
                    kept += getsizeof(text)
                else:
                    attrs[key] = any_value(value)
                    kept += value.ByteSize()
            elif key.startswith(LIST_PREFIXES):
                value = kv.value
                text = value.string_value
                if text:
                    flat[key] = text
                    kept += getsizeof(text)
                else:
                    flat[key] = any_value(value)
                    kept += value.ByteSize()
            elif key.startswith(ANNOTATION_PREFIXES):
                flat[key] = any_value(kv.value)
                info.annotated = True
                kept += kv.ByteSize()
            elif key.startswith(GENAI_LIST_PREFIXES) and key.split(".", 3)[2].isdigit():
                flat[key] = any_value(kv.value)
                info.genai_indexed = True
                kept += kv.ByteSize()
        if flat:
            info.flat = flat
        if span.events:
            kept += self._events(span, info)
        if span.links:
            info.links = [
                (link.trace_id.hex(), link.span_id.hex())
                for link in span.links
                if len(link.trace_id) == 16 and len(link.span_id) == 8
            ] or None
        _classify(info)
        items = len(attrs) + len(flat) + len(info.evaluations or ())
        info.nbytes = _SPAN_BYTES + len(info.name) + kept + _ITEM_BYTES * items
        return info

    @staticmethod
    def _events(span: Span, info: SpanInfo) -> int:
        """Evaluations, content and message events into ``info``; returns the bytes kept."""
        kept = 0
        inputs: list[dict[str, Any]] = []
        outputs: list[dict[str, Any]] = []
        for event in span.events:
            if event.name == EVAL_EVENT:
                result: dict[str, Any] = {}
                for kv in event.attributes:
                    short = EVAL_KEYS.get(kv.key)
                    if short is not None:
                        result[short] = any_value(kv.value)
                if result:
                    if info.evaluations is None:
                        info.evaluations = []
                    info.evaluations.append(result)
            elif event.name in CONTENT_EVENTS:
                key = CONTENT_EVENTS[event.name]
                for kv in event.attributes:
                    if kv.key == key and key not in info.attrs:
                        value = info.attrs[key] = any_value(kv.value)
                        kept += getsizeof(value) if isinstance(value, str) else kv.ByteSize()
            elif event.name in MESSAGE_EVENTS:
                for kv in event.attributes:
                    if kv.key == EVENT_CONTENT:
                        kept += kv.ByteSize()
                        _message_event(event.name, any_value(kv.value), inputs, outputs)
        # gen_ai.input.messages / gen_ai.output.messages attributes win over events
        if inputs:
            info.attrs.setdefault("gen_ai.input.messages", inputs)
        if outputs:
            info.attrs.setdefault("gen_ai.output.messages", outputs)
        return kept


def _message_event(
    name: str, body: Any, inputs: list[dict[str, Any]], outputs: list[dict[str, Any]]
) -> None:
    """One ``gen_ai.<role>.message`` / ``gen_ai.choice`` event body as a chat message."""
    message = loads(body) if isinstance(body, str) else body
    if name == CHOICE_EVENT and isinstance(message, dict):
        message = message.get("message", message)  # {"index", "finish_reason", "message"}
    if not isinstance(message, dict):
        return
    message = {"role": MESSAGE_EVENTS[name], **message}
    (outputs if name == CHOICE_EVENT else inputs).append(message)


def _classify(info: SpanInfo) -> None:
    """Set ``kind`` and ``convention`` from the attributes found."""
    attrs = info.attrs
    kind = attrs.get("openinference.span.kind")
    if isinstance(kind, str) and kind:
        info.kind = kind.upper()
        info.convention = "openinference"
        return
    operation = attrs.get("gen_ai.operation.name")
    if isinstance(operation, str) and operation:
        info.kind = GENAI_KINDS.get(operation, operation.upper())
        info.convention = "genai"
        return
    request_type = attrs.get("llm.request.type")  # OpenLLMetry
    if request_type in ("chat", "completion"):
        info.kind = LLM
        info.convention = "genai"
        return
    traceloop = attrs.get("traceloop.span.kind")
    if isinstance(traceloop, str) and traceloop in TRACELOOP_KINDS:
        info.kind = TRACELOOP_KINDS[traceloop]
        info.convention = "genai"
        return
    if info.genai_indexed or "gen_ai.output.messages" in attrs or "gen_ai.completion" in attrs:
        info.kind = LLM
        info.convention = "genai"
    elif "gen_ai.retrieval.documents" in attrs:
        info.kind = RETRIEVER
        info.convention = "genai"


def _scalar_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None
