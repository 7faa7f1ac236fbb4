"""Traces the assembler closed recently: a bounded memory of trace ids.

Emitted traces are remembered so that their late spans are recognised (and
dropped) instead of starting a second trace. A trace closed because it had no
AI span is only *provisionally* not RAG for ``window_s``: in a distributed
request, a gateway's plain HTTP root can arrive (and settle) before the worker
service exports its AI spans. Until the window passes, a late span reopens
the trace; then the decision is final and the trace is counted as not RAG.
"""

from __future__ import annotations

from collections import OrderedDict


class ClosedTraces:
    """Up to ``limit`` final and ``limit`` provisional trace ids, oldest forgotten first."""

    def __init__(self, limit: int, window_s: float) -> None:
        self._limit = limit
        self._window = window_s
        self._final: OrderedDict[str, tuple[str, ...]] = OrderedDict()
        self._spans: dict[str, str] = {}
        self._provisional: OrderedDict[str, float] = OrderedDict()

    def __contains__(self, trace_id: str) -> bool:
        """The trace is closed for good: its spans are late."""
        return trace_id in self._final

    @property
    def provisional(self) -> int:
        """Not-RAG traces that late spans can still reopen (a gauge)."""
        return len(self._provisional)

    def trace_of_span(self, span_id: str) -> str | None:
        """The closed trace that holds ``span_id`` (root and answer spans only)."""
        return self._spans.get(span_id)

    def remember(self, trace_id: str, span_ids: tuple[str, ...] = ()) -> None:
        """Close a trace for good (emitted, given up, or not RAG after the window)."""
        if self._limit == 0:
            return
        self._final[trace_id] = span_ids
        for span_id in span_ids:
            self._spans[span_id] = trace_id
        while len(self._final) > self._limit:
            _, old = self._final.popitem(last=False)
            for span_id in old:
                self._spans.pop(span_id, None)

    def park(self, trace_id: str, now: float) -> int:
        """Close a trace without AI spans provisionally; returns the not-RAG decisions made
        final by it (the window is 0, or older ones were pushed out of the memory)."""
        if self._limit == 0 or self._window == 0:
            self.remember(trace_id)
            return 1
        self._provisional[trace_id] = now
        final = 0
        while len(self._provisional) > self._limit:
            old, _ = self._provisional.popitem(last=False)
            self.remember(old)
            final += 1
        return final

    def reopen(self, trace_id: str) -> bool:
        """Take a provisionally closed trace back (a late span came); False if there is none."""
        return self._provisional.pop(trace_id, None) is not None

    def settle(self, now: float) -> int:
        """Make the not-RAG decisions older than the window final; returns how many."""
        ripe = 0
        for at in self._provisional.values():  # oldest first
            if now - at < self._window:
                break
            ripe += 1
        for _ in range(ripe):
            trace_id, _ = self._provisional.popitem(last=False)
            self.remember(trace_id)
        return ripe
