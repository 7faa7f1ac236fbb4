"""Late user feedback: join thumbs, ratings and comments to the traces they are about.

Feedback records (:mod:`.record`) arrive on the trace sources; the
:class:`FeedbackJoiner` (:mod:`.joiner`) keeps a bounded memory of scored traces
(:mod:`.store`) and of feedback that came first (:mod:`.pending`), writes
``type: "feedback"`` events (:mod:`.outputs`), offers unjudged traces with a late
thumbs-down to the judge (:mod:`.judging`) and tracks how well scores agree with
users (:mod:`.agreement`). Metrics: :mod:`.metrics`. Settings: :mod:`.settings`.
"""

from __future__ import annotations

from .agreement import FeedbackAgreement
from .joiner import FeedbackJoiner
from .judging import LATE_REASON, OFFER_OUTCOMES
from .outputs import DISAGREEMENT_FLAG, FEEDBACK_VERSION, feedback_event_id
from .record import (
    FeedbackRecord,
    decode_record,
    feedback_json_schema,
    feedback_key,
    late_feedback_record,
)
from .settings import FeedbackAgreementSettings, FeedbackSettings
from .store import TraceStore

__all__ = [
    "DISAGREEMENT_FLAG",
    "FEEDBACK_VERSION",
    "LATE_REASON",
    "OFFER_OUTCOMES",
    "FeedbackAgreement",
    "FeedbackAgreementSettings",
    "FeedbackJoiner",
    "FeedbackRecord",
    "FeedbackSettings",
    "TraceStore",
    "decode_record",
    "feedback_event_id",
    "feedback_json_schema",
    "feedback_key",
    "late_feedback_record",
]
