"""Feedback that arrived before its trace, waiting (bounded) for it to be scored.

Records wait by trace id in arrival order. A second record for the same trace
replaces the first in place (last write wins) and keeps its place and its
waiting time. A record is given up — emitted unjoined by the caller — when its
trace has not been scored within ``window_s`` of wall-clock time since it
arrived or of event time past its own timestamp, whichever comes first
(``unknown_trace``), or earlier when the buffer is over ``max_items`` or
``max_bytes`` (``buffer_full``, oldest first).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal

from .record import FeedbackRecord, feedback_key

WAITING_OVERHEAD = 400
"""Bytes of a waiting record beyond its strings and fields: the wrapper, the map slot."""
FIELD_OVERHEAD = 160
"""Bytes per field set on the record (the model's dict and fields-set entries, values)."""

Duplicate = Literal["identical", "updated"]


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
        self._items: OrderedDict[str, Waiting] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def add(self, item: Waiting) -> tuple[Duplicate | None, list[Waiting]]:
        """Buffer ``item``; (duplicate kind or None, records pushed out to make room)."""
        trace_id = item.record.trace_id
        item.size = waiting_size(item.record)
        old = self._items.get(trace_id)
        kind: Duplicate | None = None
        if old is not None:
            r, o = item.record, old.record
            same = feedback_key(r.thumbs, r.rating, r.comment) == feedback_key(
                o.thumbs, o.rating, o.comment
            )
            kind = "identical" if same else "updated"
            item.arrival = old.arrival
            self.bytes -= old.size
        self._items[trace_id] = item
        self.bytes += item.size
        pushed: list[Waiting] = []
        while len(self._items) > self.max_items or self.bytes > self.max_bytes:
            _, oldest = self._items.popitem(last=False)
            self.bytes -= oldest.size
            pushed.append(oldest)
        return kind, pushed

    def pop(self, trace_id: str) -> Waiting | None:
        """Take the record waiting for ``trace_id``, if any."""
        item = self._items.pop(trace_id, None)
        if item is not None:
            self.bytes -= item.size
        return item

    def expire(self, now: float, watermark: float) -> list[Waiting]:
        """Records whose wait is over (see the module docstring), oldest first."""
        out: list[Waiting] = []
        items = self._items
        window = self.window_s
        while items:
            item = next(iter(items.values()))
            if now - item.arrival < window and watermark - item.record.timestamp <= window:
                break
            items.popitem(last=False)
            self.bytes -= item.size
            out.append(item)
        return out

    def drain(self) -> list[Waiting]:
        """Everything still waiting (at shutdown), oldest first."""
        out = list(self._items.values())
        self._items.clear()
        self.bytes = 0
        return out
