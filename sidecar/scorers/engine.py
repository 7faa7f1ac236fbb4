"""The per-record hot path: decode → heuristics → sampling → scored event."""

from __future__ import annotations

import time
from collections.abc import Callable

from ..errors import InvalidInputError
from ..events import FeedbackView, Labels, ScoredEvent, make_event_id
from ..feedback.record import FeedbackRecord, decode_record
from ..sampling import Sampler
from ..stages import DeadLetter, Record, Result
from ..trace import Trace
from .heuristics import HeuristicSuite


class ScoringEngine:
    """Turns raw records into scored results or dead letters; never raises on bad input."""

    def __init__(
        self,
        heuristics: HeuristicSuite,
        sampler: Sampler,
        *,
        max_record_bytes: int = 1 << 20,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.heuristics = heuristics
        self.sampler = sampler
        self.max_record_bytes = max_record_bytes
        self._clock = clock
        self.accept_feedback = False
        """Return feedback records (``type: "feedback"``) instead of dead-lettering them."""

    @property
    def version(self) -> str:
        """The scorer-set version that goes into every heuristic event's id."""
        return self.heuristics.version

    def process(self, record: Record, source: str) -> Result | DeadLetter | FeedbackRecord:
        """Score one record; invalid input becomes a :class:`DeadLetter`, a feedback record
        is returned as such (when ``accept_feedback``)."""
        if record.trace is not None:
            return Result(record.trace, self.score(record.trace, source))
        try:
            trace = decode_record(record.value, max_bytes=self.max_record_bytes)
            if record.timestamp is not None and "timestamp" not in trace.model_fields_set:
                trace.timestamp = record.timestamp  # the transport's time, not the scoring's
            if isinstance(trace, FeedbackRecord):
                if self.accept_feedback:
                    return trace
                raise InvalidInputError("invalid_trace", "feedback record, but feedback is off")
        except InvalidInputError as exc:
            return DeadLetter.of(record, source, exc.reason, exc.detail)
        return Result(trace, self.score(trace, source))

    def score(self, trace: Trace, source: str) -> ScoredEvent:
        """Score an already-validated trace."""
        scores = self.heuristics.score(trace)
        sampled = self.sampler.decide(trace, scores)
        fb = trace.feedback
        version = self.heuristics.version
        return ScoredEvent(
            event_id=make_event_id(trace.trace_id, "heuristic", version),
            trace_id=trace.trace_id,
            type="heuristic",
            timestamp=trace.timestamp,
            scored_at=self._clock(),
            scorer_version=version,
            source=source,
            labels=Labels(trace.app, trace.model, trace.prompt_version, trace.retriever),
            scores=scores.values,
            flags=scores.flags,
            sampled=sampled,
            feedback=None if fb is None else FeedbackView(fb.thumbs, fb.rating),
        )
