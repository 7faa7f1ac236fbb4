"""Annotations, human feedback and pre-existing evaluations carried by spans.

OpenInference ``annotations.{i}.annotation.*`` (or ``evaluations.{i}.evaluation.*``)
attributes: ``HUMAN`` ones become the trace's :class:`~sidecar.trace.Feedback`, the
others (``LLM``, ``CODE``) are kept as evaluations, like ``gen_ai.evaluation.result``
span events. A *carrier* span (feedback recorded later, in its own trace) points at
the span it judges with a span link or ``feedback.trace_id`` / ``feedback.span_id``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final, Literal

from ...trace import Feedback
from .conventions import ANNOTATION_LISTS, TARGET_SPAN_KEYS, TARGET_TRACE_KEYS
from .mapping import SpanInfo
from .values import as_float, as_text

_HEX: Final = re.compile(r"[0-9a-f]+")
_UP: Final = frozenset(
    {"up", "thumbs_up", "thumbsup", "thumbs-up", "thumbs up", "👍", "positive", "like",
     "liked", "good", "helpful", "yes", "correct", "true", "+1"}
)  # fmt: skip
_DOWN: Final = frozenset(
    {"down", "thumbs_down", "thumbsdown", "thumbs-down", "thumbs down", "👎", "negative",
     "dislike", "disliked", "bad", "unhelpful", "not_helpful", "no", "incorrect", "false", "-1"}
)  # fmt: skip
_RATING_WORDS: Final = ("rating", "star", "csat", "nps")
_FEEDBACK_WORDS: Final = ("feedback", "thumb", "rating", "vote", "user")


@dataclass(frozen=True, slots=True)
class Annotation:
    """One OpenInference annotation (or evaluation) attached to a span."""

    name: str | None
    score: float | None
    label: str | None
    explanation: str | None
    annotator_kind: str | None
    span_id: str

    @property
    def is_human(self) -> bool:
        """``HUMAN`` annotator, or no annotator kind and a feedback-like name."""
        if self.annotator_kind:
            return self.annotator_kind.upper() == "HUMAN"
        name = (self.name or "").lower()
        return any(word in name for word in _FEEDBACK_WORDS)

    def record(self, source: str = "annotation") -> dict[str, Any]:
        """A JSON-ready evaluation record (None fields left out)."""
        doc = {
            "name": self.name,
            "score": self.score,
            "label": self.label,
            "explanation": self.explanation,
            "annotator_kind": self.annotator_kind,
            "span_id": self.span_id,
            "source": source,
        }
        return {k: v for k, v in doc.items() if v is not None}


def annotations_of(span: SpanInfo) -> list[Annotation]:
    """Annotations and evaluations carried as ``annotations.{i}.annotation.*`` attributes."""
    found: list[Annotation] = []
    if not span.annotated:
        return found
    for name in ANNOTATION_LISTS:
        for item in span.items(name):
            ann = Annotation(
                name=as_text(item.get("name")),
                score=as_float(item.get("score")),
                label=as_text(item.get("label")),
                explanation=as_text(item.get("explanation")),
                annotator_kind=as_text(item.get("annotator_kind")),
                span_id=span.span_id,
            )
            if ann.score is not None or ann.label is not None or ann.explanation is not None:
                found.append(ann)
    return found


def feedback_only(span: SpanInfo) -> bool:
    """The span's only AI content is human feedback: a feedback span recorded in the
    answer's own trace (not an AI span that could complete or reopen a trace)."""
    if not span.annotated or span.convention is not None or span.evaluations:
        return False
    return any(a.is_human for a in annotations_of(span))


def feedback_from(annotations: Iterable[Annotation]) -> Feedback | None:
    """Merge human annotations into one :class:`Feedback` (later ones win per field).

    Thumbs come from labels (``up``/``down``, ``thumbs_up``, ``👍``, ``positive``, …) or
    from scores 1/0/-1; a score named like a rating (``rating``, ``stars``, ``csat``)
    or outside {-1, 0, 1} is a rating; the explanation is the comment.
    """
    thumbs: Literal["up", "down"] | None = None
    rating: float | None = None
    comment: str | None = None
    for ann in annotations:
        if not ann.is_human:
            continue
        label_thumbs: Literal["up", "down"] | None = None
        if ann.label is not None:
            label = ann.label.strip().lower()
            label_thumbs = "up" if label in _UP else "down" if label in _DOWN else None
        if label_thumbs is not None:
            thumbs = label_thumbs
        if ann.score is not None:
            name = (ann.name or "").lower()
            if any(word in name for word in _RATING_WORDS):
                rating = ann.score
            elif label_thumbs is None and ann.score in (1.0, 0.0, -1.0):
                thumbs = "up" if ann.score > 0 else "down"
            elif label_thumbs is None:
                rating = ann.score
        if ann.explanation:
            comment = ann.explanation
    if thumbs is None and rating is None and comment is None:
        return None
    return Feedback(thumbs=thumbs, rating=rating, comment=comment)


def event_records(span: SpanInfo) -> list[dict[str, Any]]:
    """``gen_ai.evaluation.result`` events of a span as evaluation records."""
    records = []
    for event in span.evaluations or ():
        doc = {
            "name": as_text(event.get("name")),
            "score": as_float(event.get("score")),
            "label": as_text(event.get("label")),
            "explanation": as_text(event.get("explanation")),
            "span_id": span.span_id,
            "source": "gen_ai.evaluation.result",
        }
        records.append({k: v for k, v in doc.items() if v is not None})
    return records


def _hex_id(value: object, size: int) -> str | None:
    if isinstance(value, str):
        text = value.strip().lower().removeprefix("0x")
        if len(text) == size and _HEX.fullmatch(text):
            return text
    return None


def carrier_target(info: SpanInfo) -> tuple[str | None, str | None]:
    """The trace and span a feedback carrier points at: attributes first, then its first link."""
    attrs = info.attrs
    trace_id = next((t for k in TARGET_TRACE_KEYS if (t := _hex_id(attrs.get(k), 32))), None)
    span_id = next((t for k in TARGET_SPAN_KEYS if (t := _hex_id(attrs.get(k), 16))), None)
    if trace_id is None and span_id is None and info.links:
        return info.links[0]
    return trace_id, span_id
