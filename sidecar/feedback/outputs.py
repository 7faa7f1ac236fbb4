"""Feedback events: ``type: "feedback"``, one per joined (or given-up) feedback record.

``event_id`` is ``make_event_id(trace_id, "feedback", "feedback-1+<content hash>")``
so a re-delivered or repeated feedback gets the same id; ``timestamp`` is when
the user gave it. ``labels`` are the trace's; its scores at the time of joining
are in ``detail`` (``scores``, ``judge_scores``, ``flags``) while the event's own
``scores`` stay empty, so metric sinks never count a trace's scores twice.
``feedback`` holds the thumbs / rating not yet counted for the trace (what
``rag_sidecar_feedback_total`` counts); ``flags`` is ``["feedback_disagreement"]``
when a score contradicts the user (``detail.disagreement``), for human review.
A changed vote (up, then down) is counted again under its new value; ``detail.retracted``
names the thumbs it replaces, so net votes are the counted ones minus the retracted ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import orjson

from ..events import FeedbackView, Labels, Sampling, ScoredEvent, make_event_id
from ..stages import Result
from ..trace import Trace
from .record import FeedbackRecord, feedback_key
from .store import JUDGED, Entry

FEEDBACK_VERSION: Final = "feedback-1"
DISAGREEMENT_FLAG: Final = "feedback_disagreement"


@dataclass(slots=True)
class Remembered:
    """A stored trace, unpacked."""

    source: str
    labels: Labels
    scores: dict[str, float]
    flags: list[str]
    judge: dict[str, float] | None
    timestamp: float
    judged: bool


def compact(data: bytes) -> bytes:
    """A right-sized copy: orjson's output keeps a ~4 KiB buffer behind short results."""
    return memoryview(data).tobytes()


def pack(source: str, labels: Labels, scores: dict[str, float], flags: list[str]) -> bytes:
    """The compact form kept per trace."""
    lb = labels
    blob = orjson.dumps((source, lb.app, lb.model, lb.prompt_version, lb.retriever, scores, flags))
    return compact(blob)


def unpack(entry: Entry) -> Remembered:
    """An entry's trace, as a feedback event needs it."""
    source, app, model, pv, retriever, scores, flags = orjson.loads(entry.blob)
    judge = orjson.loads(entry.judge) if entry.judge is not None else None
    return Remembered(
        source,
        Labels(app, model, pv, retriever),
        scores,
        flags,
        judge,
        entry.timestamp,
        bool(entry.state & JUDGED),
    )


def feedback_event_id(record: FeedbackRecord) -> str:
    """Same trace and same thumbs, rating and comment → same id."""
    key = feedback_key(record.thumbs, record.rating, record.comment)
    return make_event_id(record.trace_id, "feedback", f"{FEEDBACK_VERSION}+{key}")


def feedback_event(
    record: FeedbackRecord,
    *,
    source: str,
    scored_at: float,
    trace: Remembered | None,
    counted: FeedbackView | None,
    reason: str | None = None,
    disagreement: dict[str, float] | None = None,
    supersedes: str | None = None,
    retracted: str | None = None,
) -> Result:
    """The event for one feedback record that arrived on ``source`` (``trace`` None: unjoined,
    with ``reason``)."""
    detail: dict[str, Any] = {
        "joined": trace is not None,
        "time_to_feedback_s": None,
        "thumbs": record.thumbs,
        "rating": record.rating,
        "source": record.source,
        "judged": False,
    }
    if record.comment is not None:
        detail["comment"] = record.comment
    if trace is not None:
        detail["time_to_feedback_s"] = max(0.0, record.timestamp - trace.timestamp)
        detail["judged"] = trace.judged
        detail["trace_timestamp"] = trace.timestamp
        detail["scores"] = trace.scores
        detail["flags"] = trace.flags
        if trace.judge is not None:
            detail["judge_scores"] = trace.judge
    else:
        detail["reason"] = reason
    if disagreement:
        detail["disagreement"] = disagreement
    if supersedes is not None:
        detail["supersedes"] = supersedes
    if retracted is not None:
        detail["retracted"] = retracted
    trace_id = record.trace_id
    event = ScoredEvent(
        event_id=feedback_event_id(record),
        trace_id=trace_id,
        type="feedback",
        timestamp=record.timestamp,
        scored_at=scored_at,
        scorer_version=FEEDBACK_VERSION,
        source=source,
        labels=(
            trace.labels
            if trace is not None
            else Labels(record.app, record.model, record.prompt_version)
        ),
        scores={},
        flags=[DISAGREEMENT_FLAG] if disagreement else [],
        sampled=Sampling(),
        feedback=counted,
        detail=detail,
    )
    return Result(Trace(trace_id=trace_id, timestamp=record.timestamp, query="", answer=""), event)
