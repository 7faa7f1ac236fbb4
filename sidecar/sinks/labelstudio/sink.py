"""The review sink: selects traces for human review and exports them as Label Studio tasks.

Heuristic and judge events reach sinks separately (the heuristic one first), so
the sink keeps the heuristic scores (and, for feedback events, which carry no
text, the trace) of the last ``recent_traces`` traces in an LRU. A judge or
feedback event that needs review (:func:`~.tasks.review_reasons`) becomes one
task, unless its trace was exported already (LRU of ``dedupe_size`` keys) or the
token bucket (``max_tasks_per_minute``, burst one minute's worth) is empty: the
excess is skipped and counted, never queued, so reviewers are not flooded.

Destinations: ``output`` (JSON Lines, a JSON array file, stdout or a Kafka topic
keyed by trace id) and/or a Label Studio project. When the pipeline retries a
write, a destination that already took a task does not get it again. A
destination still failing after its own retries, or refusing for good (a revoked
token, a deleted project), drops its tasks (``on_error: drop``, the default:
review is a side channel and must not stall scoring) or raises its error
(``retry``). Only writes with a task to export wait for one another: the heuristic
batches of the main write loop never queue behind a slow import.

Metrics: ``rag_sidecar_review_tasks_total{outcome}`` (``exported``,
``duplicate``, ``rate_limited``, ``no_trace``) and
``rag_sidecar_review_dropped_total{destination}``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter

from ...config import KafkaSettings
from ...errors import StageError
from ...stages import Result
from ...trace import Trace
from .destinations import Destination, build_destinations
from .settings import ReviewSettings
from .tasks import Task, build_task, dedupe_key, review_reasons

log = logging.getLogger(__name__)

KEPT_SCORES: Final = ("groundedness_lexical", "answer_query_overlap", "context_query_overlap")


@dataclass(slots=True)
class _Recent:
    scores: dict[str, float]
    trace: Trace | None


class TokenBucket:
    """``rate_per_min`` tokens a minute, at most one minute's worth banked."""

    def __init__(self, rate_per_min: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = max(1.0, rate_per_min)
        self._rate = rate_per_min / 60.0
        self._tokens = self.capacity
        self._clock = clock
        self._at = clock()

    def take(self) -> bool:
        """Spend one token if there is one."""
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._at) * self._rate)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


class ReviewSink:
    """Writes traces needing human review as Label Studio tasks (see the module docstring)."""

    def __init__(
        self,
        settings: ReviewSettings,
        *,
        kafka: KafkaSettings | None = None,
        registry: CollectorRegistry | None = None,
        destinations: Sequence[Destination] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = "review"
        self.settings = s = settings
        self.destinations: list[Destination] = (
            list(destinations) if destinations is not None else build_destinations(s, kafka)
        )
        self._bucket = TokenBucket(s.max_tasks_per_minute, clock)
        self._recent: OrderedDict[str, _Recent] = OrderedDict()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._partial: OrderedDict[str, set[str]] = OrderedDict()
        reg = registry if registry is not None else CollectorRegistry()
        self._tasks = Counter(
            "rag_sidecar_review_tasks", "Review tasks by outcome.", ("outcome",), registry=reg
        )
        self._dropped = Counter(
            "rag_sidecar_review_dropped",
            "Review tasks a destination dropped after its retries (on_error=drop).",
            ("destination",),
            registry=reg,
        )
        self._lock = asyncio.Lock()
        self.exported = 0

    async def start(self) -> None:
        """Start every destination."""
        for d in self.destinations:
            await d.start()

    async def write(self, results: Sequence[Result]) -> None:
        """Remember heuristic events; export the judge and feedback events that need review.

        Exports are serialised: judge workers write concurrently, and deduplication (like
        Label Studio on SQLite, which then loses predictions) needs one import at a time.
        Writes with nothing to review do not wait for an import in flight.
        """
        s = self.settings
        review: list[tuple[Result, list[str]]] = []
        for r in results:
            ev = r.event
            if ev.type == "heuristic":
                self._remember(r)
            elif ev.type == "judge" or (ev.type == "feedback" and s.include_feedback):
                recent = self._recent.get(ev.trace_id)
                lexical = recent.scores.get("groundedness_lexical") if recent else None
                reasons = review_reasons(s, ev, lexical)
                if reasons:
                    review.append((r, reasons))
        if review:
            async with self._lock:
                await self._write(review)

    async def _write(self, review: Sequence[tuple[Result, list[str]]]) -> None:
        s = self.settings
        fresh: list[Task] = []
        keys: set[str] = set()
        for r, reasons in review:
            ev = r.event
            recent = self._recent.get(ev.trace_id)
            key = dedupe_key(ev)
            if key in self._seen or key in keys:
                self._tasks.labels("duplicate").inc()
                continue
            trace = r.trace if ev.type == "judge" else recent.trace if recent else None
            if trace is None:
                self._tasks.labels("no_trace").inc()
                continue
            if key not in self._partial:  # not a retried write
                if not self._bucket.take():
                    self._tasks.labels("rate_limited").inc()
                    continue
                _put(self._partial, key, set(), s.dedupe_size)
            keys.add(key)
            fresh.append(build_task(trace, ev, reasons, recent.scores if recent else None))
        if fresh:
            await self._export(fresh)

    async def _export(self, tasks: list[Task]) -> None:
        """Send to each destination what it has not taken yet; then the tasks count as seen."""
        dropped: dict[str, int] = {}
        for d in self.destinations:
            todo = [t for t in tasks if d.name not in self._partial.get(t.key, ())]
            if not todo:
                continue
            try:
                await d.send(todo)
            except StageError as exc:  # retryable, or permanent (a revoked token)
                if self.settings.on_error == "retry":
                    raise
                self._dropped.labels(d.name).inc(len(todo))
                fields = {"destination": d.name, "tasks": len(todo), "error": str(exc)}
                log.warning("review destination failed; tasks dropped", extra={"fields": fields})
                for t in todo:
                    dropped[t.key] = dropped.get(t.key, 0) + 1
            for t in todo:
                self._partial.setdefault(t.key, set()).add(d.name)
        for t in tasks:
            self._partial.pop(t.key, None)
            _put(self._seen, t.key, None, self.settings.dedupe_size)
        # a task counts as exported once some destination took it (also on an earlier try)
        n = sum(dropped.get(t.key, 0) < len(self.destinations) for t in tasks)
        self._tasks.labels("exported").inc(n)
        self.exported += n

    def _remember(self, r: Result) -> None:
        scores: dict[str, float] = {
            k: r.event.scores[k] for k in KEPT_SCORES if k in r.event.scores
        }
        trace = r.trace if self.settings.include_feedback else None
        _put(self._recent, r.event.trace_id, _Recent(scores, trace), self.settings.recent_traces)

    async def flush(self) -> None:
        """Flush every destination."""
        for d in self.destinations:
            await d.flush()

    async def aclose(self) -> None:
        """Flush and close every destination."""
        for d in self.destinations:
            try:
                await d.flush()
            finally:
                await d.aclose()


def _put(store: OrderedDict[str, Any], key: str, value: Any, cap: int) -> None:
    store[key] = value
    store.move_to_end(key)
    while len(store) > cap:
        store.popitem(last=False)
