"""Scored events: what the sidecar writes for every trace it scores.

An event is one JSON object. ``event_id`` is the idempotency key: a hash of the
trace id, the event type and the scorer-set version, so re-delivering the same
trace yields the same ``event_id`` while re-scoring it with new scorers (a new
version) yields a new one. Events are built as plain slotted dataclasses on the
hot path and serialised with orjson; :func:`event_json_schema` documents them.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import orjson
from pydantic import TypeAdapter

EventType = Literal["heuristic", "judge", "embedding", "drift", "feedback"]


@dataclass(slots=True)
class Labels:
    """The trace's labels (None when the producer did not set them)."""

    app: str | None = None
    model: str | None = None
    prompt_version: str | None = None
    retriever: str | None = None


@dataclass(slots=True)
class Sampling:
    """Whether the trace was selected for the LLM judge, and why."""

    selected: bool = False
    reasons: list[str] = field(default_factory=list)


@dataclass(slots=True)
class FeedbackView:
    """User feedback carried by the trace, copied onto its event."""

    thumbs: Literal["up", "down"] | None = None
    rating: float | None = None


@dataclass(slots=True)
class ScoredEvent:
    """One scored trace (``type="heuristic"``) or a later result about it."""

    event_id: str
    trace_id: str
    type: EventType
    timestamp: float
    """The trace's own time, epoch seconds."""
    scored_at: float
    """When the sidecar scored it, epoch seconds."""
    scorer_version: str
    source: str
    labels: Labels
    scores: dict[str, float]
    flags: list[str]
    sampled: Sampling
    feedback: FeedbackView | None = None
    detail: dict[str, Any] | None = None
    """Type-specific extras (judge claims, drift statistics); None for heuristics."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (dataclasses are serialised natively by orjson)."""
        return asdict(self)


def make_event_id(trace_id: str, event_type: str, scorer_version: str) -> str:
    """The idempotency key of an event: stable across re-deliveries, new per scorer version."""
    key = f"{trace_id}\x1f{event_type}\x1f{scorer_version}".encode()
    return hashlib.blake2b(key, digest_size=16).hexdigest()


def dumps(event: ScoredEvent) -> bytes:
    """Serialise an event to compact JSON bytes (no trailing newline)."""
    return orjson.dumps(event)


def loads(data: bytes | str) -> ScoredEvent:
    """Parse an event back (tests, reports and replays read what we wrote)."""
    adapter: TypeAdapter[ScoredEvent] = TypeAdapter(ScoredEvent)
    return adapter.validate_json(data)


def event_json_schema() -> dict[str, Any]:
    """The JSON Schema of a scored event."""
    schema = TypeAdapter(ScoredEvent).json_schema()
    schema["title"] = "ScoredEvent"
    schema["description"] = __doc__.split("\n\n", 1)[0] if __doc__ else ""
    return schema
