"""Settings of the human-review export (``review:`` in the YAML file; off unless set)."""

from __future__ import annotations

from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from ...secrets import secret_from_env
from ...uris import parse_sink_uri

TOKEN_ENV: Final = "RAG_SIDECAR_LABEL_STUDIO_TOKEN"
"""Where the Label Studio token comes from when the YAML gives none (or ``..._FILE``)."""

DEFAULT_FLAGS: Final = (
    "judge_contradicted",
    "judge_disagreement",
    "judge_feedback_disagreement",
    "judge_canary_failed",
)


class LabelStudioSettings(BaseModel):
    """Import tasks straight into a Label Studio project over its REST API."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="Base URL, e.g. http://label-studio:8080.")
    token: SecretStr | None = Field(
        None, description=f"API token ('Authorization: Token'); default: env {TOKEN_ENV}[_FILE]."
    )
    project_id: int | None = Field(None, ge=1, description="An existing project (wins over title).")
    project_title: str = Field(
        "rag-sidecar review",
        min_length=3,
        max_length=50,
        description="Project used (created with the shipped labeling config if missing).",
    )
    batch_size: int = Field(100, ge=1, le=1000, description="Tasks per import request.")
    timeout_s: float = Field(30.0, gt=0, description="Per request.")
    max_retries: int = Field(3, ge=0, description="Retries of a 429/5xx/transport error.")
    max_retry_after_s: float = Field(30.0, gt=0, description="Cap on a peer's Retry-After.")

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be http://HOST[:PORT] or https://…")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _token_from_env(self) -> LabelStudioSettings:
        if self.token is not None:
            return self
        token = secret_from_env(TOKEN_ENV)
        if token is None:
            raise ValueError(f"label_studio needs a token: set {TOKEN_ENV} or {TOKEN_ENV}_FILE")
        self.token = token
        return self


class ReviewSettings(BaseModel):
    """Which traces go to human review, how many, and where the tasks are written."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    output: str | None = Field(
        None,
        description="file:PATH (JSON Lines; a .json path holds one JSON array), '-' (stdout) "
        "or kafka://HOST:PORT/TOPIC: one Label Studio task per line or message.",
    )
    label_studio: LabelStudioSettings | None = Field(
        None, description="Also import the tasks into a Label Studio project."
    )
    min_faithfulness: float = Field(
        0.5, ge=0, le=1, description="Judge faithfulness below this: review."
    )
    min_answer_relevance: float = Field(
        0.5, ge=0, le=1, description="Judge answer_relevance below this: review."
    )
    judge_high: float = Field(0.8, ge=0, le=1, description="Judge faithfulness >= this …")
    lexical_low: float = Field(0.3, ge=0, le=1, description="… but groundedness_lexical < this.")
    judge_low: float = Field(0.3, ge=0, le=1, description="Judge faithfulness <= this …")
    lexical_high: float = Field(0.7, ge=0, le=1, description="… but groundedness_lexical >= this.")
    flags: list[str] = Field(
        default_factory=lambda: list(DEFAULT_FLAGS),
        description="Judge event flags that send a trace to review (judge_unverified is noisy).",
    )
    include_feedback: bool = Field(
        True, description="Feedback events flagged feedback_disagreement (text of recent traces)."
    )
    max_tasks_per_minute: float = Field(
        30.0, gt=0, description="Token bucket (burst = one minute's worth); the excess is skipped."
    )
    recent_traces: int = Field(
        5000, ge=1, description="Heuristic scores and texts of this many recent traces are kept."
    )
    dedupe_size: int = Field(100_000, ge=1, description="Trace ids remembered for deduplication.")
    on_error: Literal["drop", "retry"] = Field(
        "drop",
        description="A destination still failing after its own retries: 'drop' its tasks "
        "(logged, counted; scoring goes on) or 'retry' (backpressure on the pipeline).",
    )

    @field_validator("output")
    @classmethod
    def _check_output(cls, value: str | None) -> str | None:
        if value is not None:
            parse_sink_uri(value)
        return value

    @model_validator(mode="after")
    def _some_destination(self) -> ReviewSettings:
        if self.output is None and self.label_studio is None:
            raise ValueError("review needs an output, a label_studio project, or both")
        return self
