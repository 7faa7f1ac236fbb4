"""Assembling spans from any number of OTLP export batches into traces.

Spans are grouped by trace id. A trace is **complete** when its root arrived (a
span without parent, or whose parent is in another process per the OTLP span
flags), no span of it arrived for ``settle_s`` (late or reordered children still
make it in) and it has a query and an answer; chunks are optional (downstream
flags ``empty_retrieval``). Without such a root, the topmost span stands in for
it after ``root_grace_s`` of quiet (counted as ``orphan_root``: misrouted spans
show up there). A trace still incomplete ``straggler_timeout_s`` after its last
span is emitted if it has a query and an answer, else counted by what it missed
(``root`` when no real root came, else ``answer``, else ``query``). Traces with
no AI span at all (plain HTTP, database) are closed, but late spans reopen them
for ``not_rag_window_s`` (another service's AI spans, exported later); after
that they are counted as ``not_rag``.

Memory is bounded: ``max_pending_traces`` and ``max_pending_bytes`` (the least
recently active trace is finalised early, as at the timeout, and counted as
evicted; :attr:`TraceAssembler.full` tells the receiver to refuse spans before
that) and ``max_spans_per_trace`` (beyond it only roots, retrievers, rerankers,
LLM calls and annotated spans are kept, up to twice the limit). The last
``emitted_memory`` finalised trace ids are remembered: their late spans are
counted and dropped (an emitted trace is never amended, that would score it
twice), late human feedback comes back as :class:`LateFeedback` (so does a
feedback-only span of a trace not being assembled: forgotten, parked as not RAG
or never seen here; it never opens a trace). Every span not kept is counted by
reason, overall and per call (:attr:`AssemblyOutput.dropped`).

Times are floats from the caller's clock; nothing here reads the clock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans

from .build import Built, build_trace
from .closed import ClosedTraces
from .conventions import LLM, RERANKER, RETRIEVER
from .feedback import Annotation, annotations_of, carrier_target, feedback_from, feedback_only
from .mapping import SpanInfo, SpanMapper
from .outputs import AssemblyOutput, AssemblyStats, LateFeedback
from .settings import AssemblySettings

__all__ = ["AssemblySettings", "TraceAssembler"]

_ESSENTIAL: Final = frozenset({RETRIEVER, RERANKER, LLM})
_RETRIEVAL: Final = frozenset({RETRIEVER, RERANKER})
_HIGH_WATER: Final = 0.9


def _bump(counter: dict[str, int], key: str) -> None:
    counter[key] = counter.get(key, 0) + 1


@dataclass(slots=True)
class _Pending:
    trace_id: str
    last_seen: float
    spans: dict[str, SpanInfo] = field(default_factory=dict)
    roots: list[SpanInfo] = field(default_factory=list)
    extra: list[Annotation] = field(default_factory=list)
    ai: bool = False
    reopened: bool = False
    nbytes: int = 0
    version: int = 0
    checked: tuple[int, str] | None = None


class TraceAssembler:
    """Groups spans by trace and emits :class:`~sidecar.trace.Trace` s when complete.

    Not thread-safe: call it from one task (the OTLP source stage).
    """

    def __init__(self, settings: AssemblySettings | None = None) -> None:
        self.settings = settings or AssemblySettings()
        s = self.settings
        self._mapper = SpanMapper(s.prompt_version_attribute, s.ignored_scopes)
        keys = (s.prompt_version_attribute, "llm.prompt_template.version")
        self._prompt_keys = tuple(dict.fromkeys(keys))
        self._pending: OrderedDict[str, _Pending] = OrderedDict()
        self._closed = ClosedTraces(s.emitted_memory, s.not_rag_window_s)
        self._pending_spans = 0
        self._pending_bytes = 0
        self.stats = AssemblyStats()

    @property
    def pending(self) -> int:
        """Traces being assembled (a gauge)."""
        return len(self._pending)

    @property
    def pending_spans(self) -> int:
        """Spans held by traces being assembled (a gauge)."""
        return self._pending_spans

    @property
    def pending_bytes(self) -> int:
        """Approximate bytes held by traces being assembled (a gauge)."""
        return self._pending_bytes

    @property
    def provisional(self) -> int:
        """Traces closed as not RAG that late spans can still reopen (a gauge)."""
        return self._closed.provisional

    @property
    def full(self) -> bool:
        """Above 90% of ``max_pending_bytes`` or ``max_pending_traces``: refuse new spans
        (429 / RESOURCE_EXHAUSTED) until traces complete, rather than evict at the limit."""
        s = self.settings
        limit = _HIGH_WATER * s.max_pending_bytes
        return self._pending_bytes >= limit or len(self._pending) >= (
            _HIGH_WATER * s.max_pending_traces
        )

    # Shortcuts to the counters most dashboards need.
    @property
    def pending_traces(self) -> int:
        """Same as :attr:`pending`."""
        return len(self._pending)

    @property
    def incomplete(self) -> dict[str, int]:
        """Traces given up, by what was missing (``root``, ``answer``, ``query``)."""
        return self.stats.traces_incomplete

    @property
    def evicted(self) -> int:
        """Pending traces finalised early at ``max_pending_traces``."""
        return self.stats.traces_evicted

    @property
    def late_spans(self) -> int:
        """Spans for traces already finalised, dropped."""
        return self.stats.spans_late

    @property
    def spans_seen(self) -> int:
        """Spans received, valid or not."""
        return self.stats.spans_seen

    @property
    def emitted(self) -> int:
        """Traces emitted, however they completed."""
        return sum(self.stats.traces_emitted.values())

    # ------------------------------------------------------------------ API

    def add(self, resource_spans: Iterable[ResourceSpans], now: float) -> AssemblyOutput:
        """Take the spans of one export request; return what became complete.

        With ``settle_s > 0`` traces complete in :meth:`expire`; with 0 a trace whose
        root is in this request is emitted here.
        """
        mapped = self._mapper.map(resource_spans)
        stats = self.stats
        out = AssemblyOutput(rejected=mapped.rejected)
        stats.spans_seen += len(mapped.spans) + len(mapped.rejected) + mapped.ignored
        stats.spans_ignored += mapped.ignored
        for reason, _ in mapped.rejected:
            _bump(stats.spans_rejected, reason)
        if mapped.ignored:
            out.dropped["ignored_scope"] = mapped.ignored
        touched: dict[str, _Pending] = {}
        carriers: list[tuple[SpanInfo, str | None, str | None]] = []
        for info in mapped.spans:
            if info.annotated:
                trace_id, span_id = carrier_target(info)
                if (trace_id or span_id) and trace_id != info.trace_id:
                    carriers.append((info, trace_id, span_id))
                    continue
            self._add_span(info, now, out, touched)
        for info, trace_id, span_id in carriers:
            if trace_id is None and span_id is not None:
                trace_id = self._trace_of_span(span_id)
            if trace_id == info.trace_id:
                self._add_span(info, now, out, touched)
            else:
                self._route_feedback(annotations_of(info), trace_id, span_id, out)
        if self.settings.settle_s == 0:
            for pending in touched.values():
                if pending.trace_id in self._pending:
                    self._check(pending, now, out)
        return out

    def expire(self, now: float) -> AssemblyOutput:
        """Emit traces that settled, and finalise those past the straggler timeout."""
        out = AssemblyOutput()
        settle = self.settings.settle_s
        ready = []
        for pending in self._pending.values():  # least recently active first
            if now - pending.last_seen < settle:
                break
            ready.append(pending)
        for pending in ready:
            self._check(pending, now, out)
        self.stats.traces_not_rag += self._closed.settle(now)
        return out

    def drain(self) -> AssemblyOutput:
        """Finalise every pending trace (on shutdown): emit what has a query and an answer."""
        out = AssemblyOutput()
        while self._pending:
            self._finalize(self._take(next(iter(self._pending))), 0.0, out, "drain")
        self.stats.traces_not_rag += self._closed.settle(float("inf"))
        return out

    # ------------------------------------------------------------- internals

    def _add_span(
        self, info: SpanInfo, now: float, out: AssemblyOutput, touched: dict[str, _Pending]
    ) -> None:
        trace_id = info.trace_id
        pending = self._pending.get(trace_id)
        if pending is None and feedback_only(info):  # its trace is gone, parked or elsewhere:
            self._route_feedback(annotations_of(info), trace_id, info.span_id, out)  # the joiner
            return
        if pending is None:
            reopened = self._closed.reopen(trace_id)
            if reopened:
                self.stats.traces_reopened += 1
            elif trace_id in self._closed:
                self._late(info, out)
                return
            if len(self._pending) >= self.settings.max_pending_traces:
                self._evict(now, out)
            pending = self._pending[trace_id] = _Pending(trace_id, now, reopened=reopened)
        else:
            self._pending.move_to_end(trace_id)  # keeps the order by last activity
            pending.last_seen = now
        if info.span_id in pending.spans:
            self.stats.spans_duplicate += 1
            _bump(out.dropped, "duplicate")
            return
        held = len(pending.spans)
        limit = self.settings.max_spans_per_trace
        if held >= limit and (held >= 2 * limit or not _essential(info)):
            self.stats.spans_dropped += 1
            _bump(out.dropped, "span_limit")
            return
        pending.spans[info.span_id] = info
        self._pending_spans += 1
        pending.nbytes += info.nbytes
        self._pending_bytes += info.nbytes
        pending.version += 1
        pending.ai = pending.ai or info.is_ai
        if info.is_root:
            pending.roots.append(info)
        touched[trace_id] = pending
        while self._pending_bytes > self.settings.max_pending_bytes and len(self._pending) > 1:
            self._evict(now, out)  # never this trace: it is the most recently active

    def _evict(self, now: float, out: AssemblyOutput) -> None:
        """Finalise the least recently active trace early, at a memory limit."""
        self.stats.traces_evicted += 1
        self._finalize(self._take(next(iter(self._pending))), now, out, "evicted")

    def _late(self, info: SpanInfo, out: AssemblyOutput) -> None:
        if info.annotated:
            annotations = annotations_of(info)
            if any(a.is_human for a in annotations):
                self._route_feedback(annotations, info.trace_id, info.span_id, out)
                return
        if info.kind in _RETRIEVAL:
            reason = "late_retrieval"
        else:
            reason = "late_ai" if info.is_ai else "late_other"
        self.stats.spans_late += 1
        _bump(self.stats.spans_late_by, reason)
        _bump(out.dropped, reason)

    def _route_feedback(
        self,
        annotations: list[Annotation],
        trace_id: str | None,
        span_id: str | None,
        out: AssemblyOutput,
    ) -> None:
        pending = self._pending.get(trace_id) if trace_id else None
        if pending is not None:
            pending.extra += annotations
            pending.version += 1
            return
        feedback = feedback_from(annotations)
        if trace_id is None or feedback is None:
            self.stats.annotations_unrouted += 1
            _bump(out.dropped, "unrouted_annotation")
            return
        out.feedback.append(LateFeedback(trace_id, feedback, span_id))
        self.stats.feedback_late += 1

    def _trace_of_span(self, span_id: str) -> str | None:
        found = self._closed.trace_of_span(span_id)
        if found is not None:
            return found
        for pending in self._pending.values():  # rare: carriers that name only a span id
            if span_id in pending.spans:
                return pending.trace_id
        return None

    def _root(self, pending: _Pending, quiet: float) -> tuple[SpanInfo | None, str]:
        spans = pending.spans
        roots = [r for r in pending.roots if not r.parent_id or r.parent_id not in spans]
        if roots:  # a true root first, else a local root below a remote parent
            return min(roots, key=lambda s: (bool(s.parent_id), s.start_ns)), "root"
        if quiet >= self.settings.root_grace_s:
            return _topmost(pending), "orphan_root"
        return None, ""

    def _check(self, pending: _Pending, now: float, out: AssemblyOutput) -> None:
        quiet = now - pending.last_seen
        root, how = self._root(pending, quiet)
        if not pending.ai and (how == "root" or pending.reopened):
            self._park(self._take(pending.trace_id), now)
            return
        if root is not None and pending.checked != (pending.version, root.span_id):
            pending.checked = (pending.version, root.span_id)
            built = self._build(pending, root, how, real_root=how == "root")
            if built.trace is not None:
                self._take(pending.trace_id)
                self._emit(built, out, how)
                return
        if quiet >= self.settings.straggler_timeout_s:
            self._finalize(self._take(pending.trace_id), now, out, "timeout")

    def _park(self, pending: _Pending, now: float) -> None:
        """Close a trace without AI spans; late spans may reopen it within the window."""
        self.stats.traces_not_rag += self._closed.park(pending.trace_id, now)

    def _finalize(self, pending: _Pending, now: float, out: AssemblyOutput, how: str) -> None:
        """Emit a trace taken out of the pending set if it has a query and an answer."""
        if not pending.ai:
            if how == "drain":
                self.stats.traces_not_rag += 1
                self._closed.remember(pending.trace_id)
            else:
                self._park(pending, now)
            return
        root, found = self._root(pending, float("inf"))
        built = self._build(pending, root, how, real_root=found == "root")
        if built.trace is not None:
            self._emit(built, out, how)
            return
        missing = (built.missing or "answer") if found == "root" else "root"
        _bump(self.stats.traces_incomplete, missing)
        self._closed.remember(pending.trace_id)

    def _build(
        self, pending: _Pending, root: SpanInfo | None, how: str, *, real_root: bool
    ) -> Built:
        try:
            return build_trace(
                pending.trace_id,
                pending.spans,
                root,
                prompt_version_keys=self._prompt_keys,
                extra_annotations=pending.extra,
                assembled=how,
                real_root=real_root,
            )
        except Exception:  # a bug or an unforeseen value: never fatal, counted as "invalid"
            return Built(None, "invalid")

    def _emit(self, built: Built, out: AssemblyOutput, how: str) -> None:
        trace = built.trace
        assert trace is not None
        out.traces.append(trace)
        _bump(self.stats.traces_emitted, how)
        root_id = trace.metadata.get("root_span_id")
        ids = tuple(i for i in (root_id, built.answer_span_id) if isinstance(i, str))
        self._closed.remember(trace.trace_id, ids)

    def _take(self, trace_id: str) -> _Pending:
        """Remove a trace from the pending set."""
        pending = self._pending.pop(trace_id)
        self._pending_spans -= len(pending.spans)
        self._pending_bytes -= pending.nbytes
        return pending


def _essential(info: SpanInfo) -> bool:
    return info.is_root or info.kind in _ESSENTIAL or info.annotated


def _topmost(pending: _Pending) -> SpanInfo | None:
    spans = pending.spans
    tops = [s for s in spans.values() if s.parent_id not in spans]
    return min(tops, key=lambda s: s.start_ns) if tops else None
