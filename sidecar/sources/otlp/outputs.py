"""What the trace assembler returns and counts."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...trace import Feedback, Trace


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


@dataclass(slots=True)
class AssemblyStats:
    """Counters since start, as plain ints (exported as Prometheus metrics by the caller)."""

    spans_seen: int = 0
    spans_rejected: dict[str, int] = field(default_factory=dict)
    """By reason: bad_trace_id, bad_span_id, bad_parent_span_id, malformed_span."""
    spans_ignored: int = 0
    spans_duplicate: int = 0
    spans_late: int = 0
    spans_dropped: int = 0
    """Over ``max_spans_per_trace``."""
    traces_emitted: dict[str, int] = field(default_factory=dict)
    """By how: root, orphan_root, timeout, evicted, drain."""
    traces_incomplete: dict[str, int] = field(default_factory=dict)
    """By what was missing: root, answer, query (``invalid``: the spans could not be read)."""
    traces_evicted: int = 0
    traces_not_rag: int = 0
    feedback_late: int = 0
    annotations_unrouted: int = 0
    """Carrier annotations whose target trace is unknown, or late non-human ones."""
