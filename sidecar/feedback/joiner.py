"""Joins late feedback to the traces it is about; the pipeline's one entry point.

The pipeline calls, on its single event loop:

* :meth:`FeedbackJoiner.scored` for every scored trace (score loop) — remembered
  in the :class:`~.store.TraceStore`; feedback that waited for it is joined;
* :meth:`FeedbackJoiner.feedback` for every feedback record (score loop) —
  joined when its trace is known, else buffered (:class:`~.pending.PendingFeedback`);
* :meth:`FeedbackJoiner.take` once per batch — the feedback events to write with
  the batch (so a joined feedback is acknowledged only once written) and the
  traces whose late thumbs-down may go to the judge;
* :meth:`FeedbackJoiner.refused` / :meth:`FeedbackJoiner.offer_late` (write loop,
  after the batch's own judge offers) and :meth:`FeedbackJoiner.judged` for
  every judge event written.

Feedback given up (no trace within the window, buffer full, shutdown) is
written by a background task through the ``write`` callable of :meth:`start`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence

import orjson
from prometheus_client import CollectorRegistry

from ..events import FeedbackView
from ..sinks.prometheus import LabelLimiter
from ..stages import Result
from ..trace import Feedback, Trace
from .agreement import FeedbackAgreement
from .judging import Offer, offer_late
from .metrics import FeedbackMetrics
from .outputs import Remembered, compact, feedback_event, pack, unpack
from .pending import PendingFeedback, Waiting
from .record import FeedbackRecord, feedback_key
from .settings import FeedbackSettings
from .store import (
    BYTES_OVERHEAD,
    JUDGED,
    REFUSED,
    SEEN_SHIFT,
    SELECTED,
    Entry,
    Last,
    TraceStore,
    estimate_trace_bytes,
)
from .sweeper import Sweeper, Write

log = logging.getLogger(__name__)


class FeedbackJoiner:
    """Remembers scored traces, joins feedback to them, emits feedback events."""

    def __init__(
        self,
        settings: FeedbackSettings,
        registry: CollectorRegistry,
        *,
        keep_traces: bool = False,
        limiter: LabelLimiter | None = None,
        max_apps: int = 100,
        label_ttl_s: float | None = 86_400.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``keep_traces``: keep full traces for late judging (only useful with a judge);
        ``limiter``: the Prometheus sink's, so both fold the same app values (else one of
        ``max_apps`` values); ``label_ttl_s``: per-app series unused that long are retired
        (``http.label_ttl_s``, as the Prometheus sink does; None keeps them)."""
        s = self.settings = settings
        self._keep = keep_traces and s.max_trace_bytes > 0
        self.store = TraceStore(
            max_traces=s.max_traces,
            max_bytes=s.max_bytes,
            max_body_bytes=s.max_trace_bytes if self._keep else 0,
            window_s=s.window_s,
        )
        self.pending = PendingFeedback(
            max_items=s.max_pending, max_bytes=s.max_pending_bytes, window_s=s.window_s
        )
        self.agreement = FeedbackAgreement(s.agreement)
        registry.register(self.agreement)
        self.metrics = FeedbackMetrics(registry, self.store, self.pending)
        self.limit = limiter or self.metrics.limiter(registry, max_apps)
        self._own_limiter = limiter is None
        self._label_ttl = label_ttl_s
        self._apps: dict[str, float] = {}
        """Exported app value → when a per-app series last used it (the clock)."""
        self.watermark = -math.inf
        """Event time: the newest trace or feedback timestamp seen (capped near the clock)."""
        self._clock = clock
        self._late_on = self._keep and s.judge_late_thumbs_down
        self._out: list[Result] = []
        self._late: list[str] = []
        self._sweeper = Sweeper(
            lambda: self.expire(self._clock()),
            interval_s=s.expire_interval_s,
            timeout_s=s.shutdown_timeout_s,
            failed=self.metrics.write_failed,
        )

    # ------------------------------------------------------------------ lifecycle

    async def start(self, write: Write) -> None:
        """Start sweeping expired traces and feedback; given-up feedback goes to ``write``."""
        await self._sweeper.start(write)

    async def aclose(self) -> None:
        """Stop sweeping; write what still waits as unjoined (``shutdown``), all within
        ``shutdown_timeout_s``. The store is lost."""
        deadline = self._sweeper.deadline()
        await self._sweeper.stop(deadline)
        left = [self._unjoined(w, "shutdown") for w in self.pending.drain()]
        out, _ = self.take()
        await self._sweeper.final([*out, *left], deadline)
        log.info(
            "feedback joiner stopped; its memory is lost",
            extra={
                "fields": {"traces_dropped": len(self.store), "unjoined_at_shutdown": len(left)}
            },
        )

    # ---------------------------------------------------------------- score loop

    def _advance(self, ts: float) -> None:
        cap = self._clock() + self.settings.max_future_s
        self.watermark = max(self.watermark, min(ts, cap))

    def scored(self, result: Result, raw: bytes = b"") -> None:
        """Remember a scored trace (``raw``: its record bytes, kept for late judging)."""
        ev, trace = result.event, result.trace
        ts = ev.timestamp
        if ts > self.watermark:
            self._advance(ts)
        trace_id = ev.trace_id
        blob = pack(ev.source, ev.labels, ev.scores, ev.flags)
        state = SELECTED if ev.sampled.selected else 0
        if self._keep:
            body: bytes | Trace = raw or trace
            size = len(raw) + BYTES_OVERHEAD if raw else estimate_trace_bytes(trace)
            entry = self.store.put(trace_id, ts, blob, state, body, size)
        else:
            entry = self.store.put(trace_id, ts, blob, state)
        fb = trace.feedback
        if fb is not None and (fb.thumbs, fb.rating, fb.comment) != (None, None, None):
            self._inline(trace_id, entry, fb)
        if self.pending:
            for waiting in self.pending.pop(trace_id):
                self._join(trace_id, entry, waiting, "feedback_first")

    def feedback(self, record: FeedbackRecord, source: str, arrival: float) -> None:
        """Join a feedback record to its trace, or keep it until the trace is scored."""
        if record.timestamp > self.watermark:
            self._advance(record.timestamp)
        waiting = Waiting(record, source, arrival)
        entry = self.store.get(record.trace_id)
        if entry is not None:
            self._join(record.trace_id, entry, waiting, "trace_first")
            return
        identical, pushed = self.pending.add(waiting)
        if identical:
            self.metrics.duplicates.labels("identical").inc()
        self._out.extend(self._unjoined(w, "buffer_full") for w in pushed)

    def take(self) -> tuple[list[Result], list[str]]:
        """(feedback events to write now, trace ids with a new late thumbs-down)."""
        if not self._out and not self._late:
            return [], []
        out, late = self._out, self._late
        self._out, self._late = [], []
        return out, late

    def expire(self, now: float) -> list[Result]:
        """Drop traces out of the window; feedback whose wait is over, as unjoined events."""
        self.store.expire(self.watermark)
        if self._label_ttl is not None:
            self.retire(now - self._label_ttl)
        return [
            self._unjoined(w, "unknown_trace") for w in self.pending.expire(now, self.watermark)
        ]

    def retire(self, before: float) -> int:
        """Drop the per-app series (time to feedback, agreement) of apps last used before
        ``before``, and their label slots when the limiter is the joiner's own; how many."""
        stale = [app for app, last in self._apps.items() if last < before]
        for app in stale:
            del self._apps[app]
            self.metrics.forget(app)
            self.agreement.forget(app)
        if stale and self._own_limiter:
            self.limit.forget("app", self._apps)
        return len(stale)

    def _app(self, value: str | None) -> str:
        """The exported app label of a trace's app, marked as used now."""
        app = self.limit("app", value)
        self._apps[app] = self._clock()
        return app

    def _inline(self, trace_id: str, entry: Entry, fb: Feedback) -> None:
        if entry.last is not None:
            return  # a re-delivered trace: what was joined to it stays
        key = feedback_key(fb.thumbs, fb.rating, fb.comment)
        entry.last = Last(key, fb.thumbs, fb.rating, None)
        self.store.update(trace_id, entry)
        if fb.thumbs is not None:
            remembered = unpack(entry)
            self._pair(entry, fb.thumbs, remembered, self._app(remembered.labels.app))

    def _join(self, trace_id: str, entry: Entry, waiting: Waiting, order: str) -> None:
        m, rec = self.metrics, waiting.record
        key = feedback_key(rec.thumbs, rec.rating, rec.comment)
        last = entry.last
        if last is not None and last.key == key:
            m.duplicates.labels("identical").inc()
            return
        if last is None:
            m.joined.labels(order).inc()
        else:
            m.duplicates.labels("updated").inc()
        remembered = unpack(entry)
        app = self._app(remembered.labels.app)
        if last is None or last.event_id is None:
            m.time_to_feedback.labels(app).observe(max(0.0, rec.timestamp - entry.timestamp))
        old_thumbs, old_rating = (None, None) if last is None else (last.thumbs, last.rating)
        thumbs = rec.thumbs if rec.thumbs is not None and rec.thumbs != old_thumbs else None
        rating = rec.rating if rec.rating is not None and rec.rating != old_rating else None
        counted = None if thumbs is None and rating is None else FeedbackView(thumbs, rating)
        current = dict(remembered.scores)
        current.update(remembered.judge or {})
        result = feedback_event(
            rec,
            source=waiting.source,
            scored_at=self._clock(),
            trace=remembered,
            counted=counted,
            disagreement=self.agreement.disagreement(current, rec.thumbs),
            supersedes=None if last is None else last.event_id,
            retracted=old_thumbs if thumbs is not None else None,
        )
        entry.last = Last(
            key,
            rec.thumbs if rec.thumbs is not None else old_thumbs,
            rec.rating if rec.rating is not None else old_rating,
            result.event.event_id,
        )
        self.store.update(trace_id, entry)
        if rec.thumbs is not None:
            self._pair(entry, rec.thumbs, remembered, app)
        if thumbs == "down" and self._late_on:
            self._late.append(trace_id)
        self._out.append(result)

    def _pair(self, entry: Entry, thumbs: str, remembered: Remembered, app: str) -> None:
        """Add (score, thumbs) pairs not yet made for this trace to the agreement windows."""
        judge = remembered.judge or {}
        for i, name in enumerate(self.agreement.scores):
            bit = 1 << (SEEN_SHIFT + i)
            if entry.state & bit:
                continue
            value = judge.get(name, remembered.scores.get(name))
            if isinstance(value, int | float):
                self.agreement.observe(app, name, float(value), thumbs == "up")
                entry.state |= bit

    def _unjoined(self, waiting: Waiting, reason: str) -> Result:
        rec = waiting.record
        self.metrics.unjoined.labels(reason).inc()
        counted = (
            None
            if rec.thumbs is None and rec.rating is None
            else FeedbackView(rec.thumbs, rec.rating)
        )
        return feedback_event(
            rec,
            source=waiting.source,
            scored_at=self._clock(),
            trace=None,
            counted=counted,
            reason=reason,
        )

    # ---------------------------------------------------------------- write loop

    def refused(self, trace_id: str) -> None:
        """The judge refused this sampled trace: a late thumbs-down may offer it again."""
        entry = self.store.peek(trace_id)
        if entry is not None:
            entry.state |= REFUSED

    def offer_late(self, trace_ids: Sequence[str], offer: Offer) -> None:
        """Offer traces with a new late thumbs-down to the judge, as priority samples."""
        count = self.metrics.judge_offers
        for trace_id in trace_ids:
            count.labels(offer_late(self.store, trace_id, offer, self._clock())).inc()

    def judged(self, results: Sequence[Result]) -> None:
        """Remember the primary judge's scores of written judge events (others are ignored)."""
        for r in results:
            ev = r.event
            if ev.type != "judge" or not ev.scores:
                continue
            if ev.detail is not None and ev.detail.get("role", "primary") != "primary":
                continue
            entry = self.store.peek(ev.trace_id)
            if entry is None:
                continue
            entry.state |= JUDGED
            entry.judge = compact(orjson.dumps(ev.scores))
            self.store.drop_body(ev.trace_id, entry)
            self.store.update(ev.trace_id, entry)
            last = entry.last
            if last is not None and last.thumbs is not None:
                remembered = unpack(entry)
                app = self._app(remembered.labels.app)
                self._pair(entry, last.thumbs, remembered, app)
