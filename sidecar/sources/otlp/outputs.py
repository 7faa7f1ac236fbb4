"""What the trace assembler returns and counts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from ...trace import Feedback, Trace

UNUSED: Final = frozenset({"span_limit", "late_retrieval", "late_ai", "unrouted_annotation"})
"""Drop reasons of valid spans whose content was not used, reported back as
``partial_success``. Not reported: duplicates (accepted before), the sidecar's own
spans (ignored scopes) and late spans without AI attributes (never used anyway)."""

REJECT_REASONS: Final = ("bad_trace_id", "bad_span_id", "bad_parent_span_id", "malformed_span")
"""Why the mapper rejects a span as malformed."""


@dataclass(frozen=True, slots=True)
class LateFeedback:
    """Human feedback for a trace that was already finalised (or is not held here)."""

    trace_id: str
    feedback: Feedback
    span_id: str | None = None
    """The span the feedback is about, when known."""


@dataclass(slots=True)
class AssemblyOutput:
    """What one call produced."""

    traces: list[Trace] = field(default_factory=list)
    feedback: list[LateFeedback] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    """``(reason, detail)`` per malformed span."""
    dropped: dict[str, int] = field(default_factory=dict)
    """Valid spans of this call not kept, by reason (see :class:`AssemblyStats`)."""

    @property
    def unused(self) -> dict[str, int]:
        """The drops to report to the client (reasons in :data:`UNUSED`)."""
        return {k: n for k, n in sorted(self.dropped.items()) if k in UNUSED}


@dataclass(slots=True)
class AssemblyStats:
    """Counters since start, as plain ints (exported as Prometheus metrics by the caller)."""

    spans_seen: int = 0
    spans_rejected: dict[str, int] = field(default_factory=dict)
    """By reason: bad_trace_id, bad_span_id, bad_parent_span_id, malformed_span."""
    spans_ignored: int = 0
    spans_duplicate: int = 0
    spans_late: int = 0
    """For traces already closed, all reasons of :attr:`spans_late_by` together."""
    spans_late_by: dict[str, int] = field(default_factory=dict)
    """``late_retrieval`` (retriever or reranker: the trace went without those chunks),
    ``late_ai`` (other AI spans), ``late_other`` (spans without AI attributes)."""
    spans_dropped: int = 0
    """Over ``max_spans_per_trace``."""
    traces_emitted: dict[str, int] = field(default_factory=dict)
    """By how: root, orphan_root, timeout, evicted, drain."""
    traces_incomplete: dict[str, int] = field(default_factory=dict)
    """By what was missing: root, answer, query (``invalid``: the spans could not be read)."""
    traces_evicted: int = 0
    """Finalised early at ``max_pending_traces`` or ``max_pending_bytes``."""
    traces_not_rag: int = 0
    """Closed without any AI span, counted once the reopen window passed."""
    traces_reopened: int = 0
    """Closed as not RAG, then reopened by late spans within the window."""
    feedback_late: int = 0
    annotations_unrouted: int = 0
    """Carrier annotations whose target trace is unknown, or late non-human ones."""

    def dropped(self) -> dict[str, int]:
        """Valid spans not kept since start, by reason (the metric's ``reason`` label)."""
        out = {
            "duplicate": self.spans_duplicate,
            "ignored_scope": self.spans_ignored,
            "span_limit": self.spans_dropped,
            "unrouted_annotation": self.annotations_unrouted,
            "late_retrieval": 0,
            "late_ai": 0,
            "late_other": 0,
        }
        out.update(self.spans_late_by)
        return out

    def rejected(self) -> dict[str, int]:
        """Malformed spans since start, by reason, every reason present (0 if none)."""
        return dict.fromkeys(REJECT_REASONS, 0) | self.spans_rejected
