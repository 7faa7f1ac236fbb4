"""Bounded memory of recently scored traces, keyed by trace id.

Each :class:`Entry` holds what a feedback event needs — source, labels,
heuristic scores and flags packed into one compact JSON ``blob``, the primary
judge's scores once judged, the feedback already counted — and, within a
separate smaller budget, the trace itself (the raw record bytes, or the
assembled :class:`~sidecar.trace.Trace` for OTLP) so that a late thumbs-down
can still be judged.

Bounds, all enforced on insert: ``max_traces`` entries and ``max_bytes``
accounted bytes (least recently used evicted first), ``max_body_bytes`` for the
kept traces (oldest dropped first; the entry stays), and a retention window by
event time: :meth:`TraceStore.expire` drops entries older than the newest
timestamp seen minus ``window_s`` (lazily, from the least recently used end).
Byte figures are estimates calibrated against ``tracemalloc`` (see the tests).
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import dataclass

import orjson

from ..trace import Trace

ENTRY_OVERHEAD = 380
"""Bytes of an entry beyond its id and blob: the object, its float, the map slot, headers."""
BYTES_OVERHEAD = 33
"""A ``bytes`` object's header."""
BODY_OVERHEAD = 180
"""The body index's slot per kept trace."""
LAST_OVERHEAD = 150
"""A :class:`Last` record."""

# Entry.state bits
SELECTED = 1
"""The sampler selected the trace for the judge."""
REFUSED = 2
"""…but the judge refused it (budget, backpressure, breaker)."""
JUDGED = 4
"""The primary judge's event was written."""
LATE_OFFERED = 8
"""Offered to the judge after a late thumbs-down, and accepted."""
SEEN_SHIFT = 8
"""Bit ``SEEN_SHIFT + i``: agreement score ``i`` already paired with this trace's thumbs."""


@dataclass(slots=True)
class Last:
    """The feedback last joined to a trace, and the values already counted for it."""

    key: str
    thumbs: str | None
    rating: float | None
    event_id: str | None
    """The feedback event written for it (None for inline feedback)."""


class Entry:
    """One scored trace as remembered for feedback."""

    __slots__ = ("blob", "body", "body_size", "judge", "last", "size", "state", "timestamp")

    def __init__(self, timestamp: float, blob: bytes, state: int) -> None:
        self.timestamp = timestamp
        self.blob = blob
        """orjson of ``[source, app, model, prompt_version, retriever, scores, flags]``."""
        self.state = state
        self.judge: bytes | None = None
        """orjson of the primary judge's scores."""
        self.last: Last | None = None
        self.body: bytes | Trace | None = None
        self.body_size = 0
        self.size = 0


def estimate_trace_bytes(trace: Trace) -> int:
    """Rough in-memory size of an assembled trace: strings plus object overheads (calibrated
    with ``tracemalloc`` on the example traces; ASCII text assumed)."""
    size = 1500 + len(trace.query) + len(trace.answer) + len(trace.reference or "")
    for c in trace.chunks:
        size += 700 + len(c.text) + len(c.id) + len(c.source or "")
    if trace.metadata:
        size += 3 * len(orjson.dumps(trace.metadata, default=str, option=orjson.OPT_NON_STR_KEYS))
    return size


class TraceStore:
    """LRU map trace_id → :class:`Entry` bounded by count, bytes and event-time window."""

    def __init__(
        self, *, max_traces: int, max_bytes: int, max_body_bytes: int, window_s: float
    ) -> None:
        self.max_traces = max_traces
        self.max_bytes = max_bytes
        self.max_body_bytes = max_body_bytes
        self.window_s = window_s
        self.bytes = 0
        self.body_bytes = 0
        self.evicted: Counter[tuple[str, str]] = Counter()
        """By (part, reason): part ``entry`` or ``body``; reason ``window``, ``max_traces``,
        ``max_bytes``, ``max_trace_bytes``."""
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._bodies: OrderedDict[str, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bodies(self) -> int:
        """Entries holding their full trace."""
        return len(self._bodies)

    def get(self, trace_id: str) -> Entry | None:
        """The entry (now most recently used), or None."""
        entry = self._entries.get(trace_id)
        if entry is not None:
            self._entries.move_to_end(trace_id)
        return entry

    def peek(self, trace_id: str) -> Entry | None:
        """The entry without touching its recency."""
        return self._entries.get(trace_id)

    def put(
        self,
        trace_id: str,
        timestamp: float,
        blob: bytes,
        state: int,
        body: bytes | Trace | None = None,
        body_size: int = 0,
    ) -> Entry:
        """Remember a scored trace; a re-delivered one keeps its feedback and judge state."""
        entry = self._entries.get(trace_id)
        if entry is None:
            entry = self._entries[trace_id] = Entry(timestamp, blob, state)
        else:
            self._entries.move_to_end(trace_id)
            self.bytes -= entry.size
            entry.timestamp, entry.blob = timestamp, blob
            entry.state = (entry.state & ~(SELECTED | REFUSED)) | state
        self._account(trace_id, entry)
        if body is not None and not entry.state & JUDGED:
            self.set_body(trace_id, entry, body, body_size)
        self._shrink()
        return entry

    def _account(self, trace_id: str, entry: Entry) -> None:
        size = ENTRY_OVERHEAD + len(trace_id) + len(entry.blob)
        if entry.judge is not None:
            size += BYTES_OVERHEAD + len(entry.judge)
        if entry.last is not None:
            size += LAST_OVERHEAD
        entry.size = size
        self.bytes += size

    def update(self, trace_id: str, entry: Entry) -> None:
        """Re-account an entry after its ``judge`` or ``last`` changed."""
        self.bytes -= entry.size
        self._account(trace_id, entry)
        self._shrink()

    def set_body(self, trace_id: str, entry: Entry, body: bytes | Trace, size: int) -> None:
        """Keep the full trace within the body budget (too large: not kept)."""
        self.drop_body(trace_id, entry)
        size += BODY_OVERHEAD
        if size > self.max_body_bytes:
            return
        entry.body, entry.body_size = body, size
        self._bodies[trace_id] = None
        self.body_bytes += size
        while self.body_bytes > self.max_body_bytes:
            oldest = next(iter(self._bodies))
            victim = self._entries[oldest]
            self.drop_body(oldest, victim)
            self.evicted["body", "max_trace_bytes"] += 1

    def drop_body(self, trace_id: str, entry: Entry) -> None:
        """Forget the full trace, keep the entry."""
        if entry.body is None:
            return
        self._bodies.pop(trace_id, None)
        self.body_bytes -= entry.body_size
        entry.body, entry.body_size = None, 0

    def _remove(self, trace_id: str, entry: Entry, reason: str) -> None:
        del self._entries[trace_id]
        self.bytes -= entry.size
        if entry.body is not None:
            self.drop_body(trace_id, entry)
            self.evicted["body", reason] += 1
        self.evicted["entry", reason] += 1

    def _shrink(self) -> None:
        entries = self._entries
        while len(entries) > self.max_traces or self.bytes > self.max_bytes:
            reason = "max_traces" if len(entries) > self.max_traces else "max_bytes"
            trace_id, entry = next(iter(entries.items()))
            self._remove(trace_id, entry, reason)

    def expire(self, watermark: float) -> int:
        """Drop entries older than ``watermark - window_s`` from the LRU end; how many."""
        cutoff = watermark - self.window_s
        n = 0
        entries = self._entries
        while entries:
            trace_id, entry = next(iter(entries.items()))
            if entry.timestamp >= cutoff:
                break
            self._remove(trace_id, entry, "window")
            n += 1
        return n
