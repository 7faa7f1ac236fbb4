"""Feedback that arrived before its trace, waiting (bounded) for it to be scored.

Records wait by trace id in arrival order. Later records for the same trace wait
with the first, in its place and its waiting time, unless identical to the one
before (dropped): once the trace is scored they are joined in order, as if the
trace had come first (a thumbs-down then a comment-only record keep both; the
comment no longer replaces the thumbs). A trace's records are given up together —
emitted unjoined by the caller — when it has not been scored within ``window_s``
of wall-clock time since the first arrived or of event time past its timestamp,
whichever comes first (``unknown_trace``), or earlier when the buffer is over
``max_items`` records or ``max_bytes`` (``buffer_full``, oldest first).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from .record import FeedbackRecord, feedback_key

WAITING_OVERHEAD = 400
"""Bytes of a waiting record beyond its strings and fields: the wrapper, the map slot."""
FIELD_OVERHEAD = 160
"""Bytes per field set on the record (the model's dict and fields-set entries, values)."""
GROUP_OVERHEAD = 72
"""Bytes of the list holding a trace's waiting records."""


@dataclass(slots=True)
class Waiting:
    """One feedback record and where and when it arrived."""

    record: FeedbackRecord
    source: str
    """The pipeline source it came from (file, kafka, otlp…)."""
    arrival: float
    """Wall-clock seconds of its first arrival."""
    size: int = 0


def waiting_size(record: FeedbackRecord) -> int:
    """Approximate bytes held for a waiting record."""
    return (
        WAITING_OVERHEAD
        + FIELD_OVERHEAD * len(record.model_fields_set)
        + len(record.trace_id)
        + len(record.comment or "")
        + len(record.source or "")
    )


class PendingFeedback:
    """Bounded, insertion-ordered buffer of early feedback."""

    def __init__(self, *, max_items: int, max_bytes: int, window_s: float) -> None:
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.window_s = window_s
        self.bytes = 0
        self._count = 0
        self._items: OrderedDict[str, list[Waiting]] = OrderedDict()

    def __len__(self) -> int:
        """Records waiting."""
        return self._count

    def __bool__(self) -> bool:
        return bool(self._items)

    def add(self, item: Waiting) -> tuple[bool, list[Waiting]]:
        """Buffer ``item``; (whether it was identical to the one before it and dropped,
        records pushed out to make room)."""
        r = item.record
        item.size = waiting_size(r)
        group = self._items.get(r.trace_id)
        if group is None:
            item.size += GROUP_OVERHEAD
            self._items[r.trace_id] = [item]
        else:
            o = group[-1].record
            if feedback_key(r.thumbs, r.rating, r.comment) == feedback_key(
                o.thumbs, o.rating, o.comment
            ):
                return True, []
            group.append(item)
        self._count += 1
        self.bytes += item.size
        pushed: list[Waiting] = []
        while self._count > self.max_items or self.bytes > self.max_bytes:
            pushed += self._take(next(iter(self._items)))
        return False, pushed

    def _take(self, trace_id: str) -> list[Waiting]:
        group = self._items.pop(trace_id)
        self._count -= len(group)
        self.bytes -= sum(w.size for w in group)
        return group

    def pop(self, trace_id: str) -> list[Waiting]:
        """Take the records waiting for ``trace_id`` (in arrival order; none: empty)."""
        return self._take(trace_id) if trace_id in self._items else []

    def expire(self, now: float, watermark: float) -> list[Waiting]:
        """Records whose wait is over (see the module docstring), oldest first."""
        out: list[Waiting] = []
        items = self._items
        window = self.window_s
        while items:
            trace_id, group = next(iter(items.items()))
            first = group[0]
            if now - first.arrival < window and watermark - first.record.timestamp <= window:
                break
            out += self._take(trace_id)
        return out

    def drain(self) -> list[Waiting]:
        """Everything still waiting (at shutdown), oldest first."""
        out = [w for group in self._items.values() for w in group]
        self._items.clear()
        self._count = self.bytes = 0
        return out
