"""Settings of late-feedback joining (``feedback:`` in the YAML file)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

_MIB = 1 << 20


class FeedbackAgreementSettings(BaseModel):
    """Agreement of scores with user thumbs, per app, over a sliding window."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scores: list[str] = Field(
        default_factory=lambda: ["faithfulness", "groundedness_lexical"],
        description="Scores compared with thumbs (judge scores first, then heuristic ones).",
    )
    window: int = Field(
        1000, ge=10, description="Last (score, thumbs) pairs kept per app and score."
    )
    high: float = Field(
        0.8, ge=0, le=1, description="A thumbs-down on a trace scoring at least this disagrees."
    )
    low: float = Field(
        0.2, ge=0, le=1, description="A thumbs-up on a trace scoring at most this disagrees."
    )

    @model_validator(mode="after")
    def _check(self) -> FeedbackAgreementSettings:
        if self.low >= self.high:
            raise ValueError("agreement.low must be below agreement.high")
        if len(self.scores) > 16:
            raise ValueError("at most 16 agreement scores")
        return self


class FeedbackSettings(BaseModel):
    """Joining feedback records to the traces they are about (see README, Late feedback)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(
        True, description="Accept feedback records; off: they are dead-lettered (invalid_trace)."
    )
    window_s: float = Field(
        3600.0,
        gt=0,
        description="How long (event time) scored traces are kept for feedback, and how long "
        "feedback waits for a trace it arrived before.",
    )
    max_traces: int = Field(50_000, ge=1, description="Scored traces kept (LRU).")
    max_bytes: int = Field(
        32 * _MIB, ge=4096, description="Approximate bytes of the kept traces' summaries."
    )
    max_trace_bytes: int = Field(
        32 * _MIB,
        ge=0,
        description="Approximate bytes of full traces kept so that a late thumbs-down can still "
        "be judged (only with a judge; 0 keeps none).",
    )
    max_pending: int = Field(10_000, ge=1, description="Feedback records waiting for their trace.")
    max_pending_bytes: int = Field(
        4 * _MIB, ge=4096, description="Approximate bytes of the waiting feedback records."
    )
    max_future_s: float = Field(
        300.0, ge=0, description="Timestamps further ahead of the clock do not advance event time."
    )
    expire_interval_s: float = Field(
        1.0, gt=0, description="How often expired traces and feedback are swept."
    )
    shutdown_timeout_s: float = Field(
        10.0, gt=0, description="Time allowed at shutdown to write the feedback still waiting."
    )
    judge_late_thumbs_down: bool = Field(
        True, description="Offer an unjudged trace to the judge when a thumbs-down arrives late."
    )
    agreement: FeedbackAgreementSettings = Field(default_factory=FeedbackAgreementSettings)
