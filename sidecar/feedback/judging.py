"""A late thumbs-down makes an unjudged trace a priority judge sample.

Had the thumbs-down been inline, the sampler would have selected the trace
(``thumbs_down``); arriving late, the trace is offered to the judge after the
fact with the reason ``thumbs_down_late`` — a priority reason, so it may use the
judge's priority reserve, but never more than the judge's budget. The offered
trace carries the thumbs-down (not the comment) so the judge's own agreement
with feedback sees it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from ..errors import InvalidInputError
from ..events import Sampling, ScoredEvent, make_event_id
from ..stages import Result
from ..trace import Feedback, decode_trace
from .outputs import FEEDBACK_VERSION, unpack
from .store import JUDGED, LATE_OFFERED, REFUSED, SELECTED, TraceStore

LATE_REASON: Final = "thumbs_down_late"
"""The judge sample reason of a trace offered after a late thumbs-down."""
OFFER_OUTCOMES: Final = ("accepted", "refused", "already_judged", "already_sampled", "no_trace")
Offer = Callable[[Result], bool]


def offer_late(store: TraceStore, trace_id: str, offer: Offer, now: float) -> str:
    """Offer one trace with a new late thumbs-down to the judge; the outcome."""
    entry = store.peek(trace_id)
    if entry is None:
        return "no_trace"
    state = entry.state
    if state & (JUDGED | LATE_OFFERED):
        return "already_judged"
    if state & SELECTED and not state & REFUSED:
        return "already_sampled"
    body = entry.body
    if body is None:
        return "no_trace"
    try:
        trace = decode_trace(body, max_bytes=len(body) + 1) if isinstance(body, bytes) else body
    except InvalidInputError:
        return "no_trace"
    rating = entry.last.rating if entry.last is not None else None
    trace = trace.model_copy(update={"feedback": Feedback(thumbs="down", rating=rating)})
    r = unpack(entry)
    event = ScoredEvent(
        event_id=make_event_id(trace_id, "heuristic", FEEDBACK_VERSION),
        trace_id=trace_id,
        type="heuristic",
        timestamp=entry.timestamp,
        scored_at=now,
        scorer_version=FEEDBACK_VERSION,
        source=r.source,
        labels=r.labels,
        scores=r.scores,
        flags=r.flags,
        sampled=Sampling(selected=True, reasons=[LATE_REASON]),
    )
    if not offer(Result(trace, event)):
        return "refused"
    entry.state |= LATE_OFFERED
    return "accepted"
