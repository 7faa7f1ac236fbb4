"""Which traces go to the LLM judge.

Two rules, applied after the heuristics (priority rules read their flags):

* **Hash sampling** — a trace is selected when ``h(salt, trace_id) < rate``,
  where ``h`` maps the blake2b hash of the id to [0, 1). The decision depends
  on nothing but the id, so every replica and every replay agrees on it.
* **Priority rules** — always select traces with thumbs-down feedback, a top
  retrieval score below a threshold, or any configured heuristic flag.

Each selected trace records its reasons: ``rate``, ``thumbs_down``,
``low_retrieval_score``, ``flag:<name>``. The judge (a later stage) spends its
budget on priority reasons first.
"""

from __future__ import annotations

import hashlib

from pydantic import BaseModel, ConfigDict, Field

from .events import Sampling
from .scorers.base import Scores
from .trace import Trace

_SCALE = float(1 << 64)


class SamplingSettings(BaseModel):
    """Judge sampling rules."""

    model_config = ConfigDict(extra="forbid")

    rate: float = Field(0.05, ge=0.0, le=1.0, description="Share of traces hash-sampled.")
    salt: str = Field("", description="Change to draw a different (still deterministic) sample.")
    thumbs_down: bool = Field(True, description="Always select thumbs-down traces.")
    low_retrieval_score: float | None = Field(
        0.3, description="Always select traces whose top retrieval score is below this."
    )
    priority_flags: list[str] = Field(
        default_factory=lambda: ["low_groundedness", "invalid_citation", "empty_retrieval"],
        description="Always select traces carrying any of these heuristic flags.",
    )


def hash_unit(trace_id: str, salt: str = "") -> float:
    """Map a trace id to a uniform number in [0, 1), the same everywhere."""
    return _unit(f"{salt}\x1f".encode(), trace_id)


def _unit(prefix: bytes, trace_id: str) -> float:
    digest = hashlib.blake2b(prefix + trace_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


class Sampler:
    """Deterministic hash sampling plus priority rules."""

    def __init__(self, settings: SamplingSettings) -> None:
        # Plain attributes: read for every trace.
        self._flags = frozenset(settings.priority_flags)
        self._thumbs_down = settings.thumbs_down
        self._low = settings.low_retrieval_score
        self._rate = settings.rate
        self._prefix = f"{settings.salt}\x1f".encode()

    def decide(self, trace: Trace, scores: Scores) -> Sampling:
        """Decide whether ``trace`` goes to the judge, and record why."""
        reasons: list[str] = []
        fb = trace.feedback
        if fb is not None and self._thumbs_down and fb.thumbs == "down":
            reasons.append("thumbs_down")
        low = self._low
        if low is not None:
            top = scores.values.get("retrieval_top_score")
            if top is not None and top < low:
                reasons.append("low_retrieval_score")
        if scores.flags and self._flags:
            reasons.extend(f"flag:{f}" for f in scores.flags if f in self._flags)
        if self._rate > 0.0 and _unit(self._prefix, trace.trace_id) < self._rate:
            reasons.append("rate")
        return Sampling(selected=bool(reasons), reasons=reasons)
