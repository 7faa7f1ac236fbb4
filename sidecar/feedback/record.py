"""Feedback records: a user's thumbs, rating or comment, sent after the answer.

A feedback record is one JSON object with ``"type": "feedback"`` on any source
that carries traces (a JSONL line, a Kafka message, or an OpenInference human
annotation on a carrier span that arrives after its trace was assembled)::

    {"type": "feedback", "trace_id": "tr-1", "timestamp": "2026-11-20T10:03:00Z",
     "thumbs": "down", "rating": 2, "comment": "wrong plan name", "source": "widget"}

:func:`decode_record` reads a raw record as either a trace or a feedback record,
parsing the JSON once. The comment may hold personal data: it goes to the
events sink and never to logs or error details.
"""

from __future__ import annotations

import hashlib
import time
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import InvalidInputError
from ..stages import Record
from ..trace import Feedback, Trace, epoch_seconds, id_text, trace_from_object

FEEDBACK_TYPE = "feedback"


class FeedbackRecord(BaseModel):
    """User feedback about one trace, sent as its own record (``type: "feedback"``)."""

    model_config = ConfigDict(extra="ignore", title="FeedbackRecord")

    type: Literal["feedback"] = Field(description='Always "feedback": what tells it from a trace.')
    trace_id: Annotated[str, Field(min_length=1, max_length=256)] = Field(
        description="The trace the feedback is about (the same id as the trace's)."
    )
    timestamp: float = Field(
        default_factory=time.time,
        allow_inf_nan=False,
        description="When the user gave it: RFC 3339 with a zone, or epoch seconds (or "
        "milliseconds, microseconds, nanoseconds: told apart by magnitude). "
        "Defaults to the Kafka record timestamp, else the arrival time.",
        json_schema_extra={
            "anyOf": [{"type": "string", "format": "date-time"}, {"type": "number"}]
        },
    )
    thumbs: Literal["up", "down"] | None = None
    rating: float | None = Field(
        None, allow_inf_nan=False, description="A numeric rating in the app's own scale."
    )
    comment: str | None = Field(None, description="Free text; may hold personal data.")
    source: str | None = Field(
        None, max_length=128, description="Where it came from (widget, api, annotation queue…)."
    )
    app: str | None = Field(
        None,
        max_length=256,
        description="The trace's app, when the sender knows it: the labels of feedback that "
        "finds no trace (after a restart, on another replica) instead of 'unknown'.",
    )
    model: str | None = Field(None, max_length=256, description="As ``app``, the trace's model.")
    prompt_version: str | None = Field(
        None, max_length=256, description="As ``app``, the trace's prompt_version."
    )

    _trace_id_text = field_validator("trace_id", mode="before")(id_text)

    @field_validator("timestamp", mode="before")
    @classmethod
    def _epoch(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("timestamp must be RFC 3339 or epoch seconds")
        return epoch_seconds(value)

    @model_validator(mode="after")
    def _says_something(self) -> FeedbackRecord:
        if self.thumbs is None and self.rating is None and self.comment is None:
            raise ValueError("feedback needs thumbs, rating or comment")
        return self


def feedback_key(thumbs: str | None, rating: float | None, comment: str | None) -> str:
    """Content hash of a feedback (16 hex): equal for duplicates, whatever their timestamps."""
    blob = orjson.dumps([thumbs, rating, comment])
    return hashlib.blake2b(blob, digest_size=8).hexdigest()


def _short(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False, include_input=False)[:3]:
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def feedback_from_object(row: dict[str, Any]) -> FeedbackRecord:
    """Validate a decoded ``type: "feedback"`` object; ``InvalidInputError`` (invalid_trace)."""
    try:
        return FeedbackRecord.model_validate(row)
    except ValidationError as exc:
        raise InvalidInputError("invalid_trace", f"feedback: {_short(exc)}") from None


def decode_record(raw: bytes | str, *, max_bytes: int = 1 << 20) -> Trace | FeedbackRecord:
    """Parse one raw record into a :class:`Trace` or, for ``type: "feedback"``, a feedback."""
    if len(raw) > max_bytes:
        raise InvalidInputError("too_large", f"{len(raw)} bytes > limit {max_bytes}")
    try:
        row = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError("not_json", str(exc).split(":", 1)[0]) from None
    if isinstance(row, dict) and row.get("type") == FEEDBACK_TYPE:
        return feedback_from_object(row)
    return trace_from_object(row)


def late_feedback_record(
    trace_id: str, feedback: Feedback, *, arrival: float, source: str = "otlp_annotation"
) -> Record:
    """A raw feedback record for human feedback that came after its trace (OTLP carriers)."""
    doc = {
        "type": FEEDBACK_TYPE,
        "trace_id": trace_id,
        "timestamp": arrival,
        "thumbs": feedback.thumbs,
        "rating": feedback.rating,
        "comment": feedback.comment,
        "source": source,
    }
    return Record(orjson.dumps(doc), f"otlp:feedback:{trace_id}", arrival)


def feedback_json_schema() -> dict[str, Any]:
    """The JSON Schema of a feedback record (``rag-sidecar schema feedback``)."""
    return FeedbackRecord.model_json_schema()
