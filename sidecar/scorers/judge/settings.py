"""Settings of one LLM judge (several may be configured, told apart by ``name``).

Everything that can change a judge score (prompt version and texts, model,
context budget, redaction, rubric) is folded into the judge's scorer version
(:func:`sidecar.scorers.judge.prompts.judge_version`), hence into its events'
``event_id``, and so are a non-primary judge's role and name (its events never
share the primary's ``event_id``). Operational knobs (timeouts, retries, budget,
queue, canaries, agreement) are not.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

RUBRIC_DIMENSIONS = (
    "answer_relevance",
    "clarity",
    "completeness",
    "conciseness",
    "groundedness",
    "harmfulness",
)
"""The rubric's six dimensions (``answer_relevance`` comes from the core verdict)."""


class JudgeTimeouts(BaseModel):
    """Per-phase HTTP timeouts in seconds, plus a cap on one whole attempt."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    connect: float = Field(5.0, gt=0, description="Opening a TCP/TLS connection.")
    read: float = Field(60.0, gt=0, description="Waiting for response bytes.")
    write: float = Field(10.0, gt=0, description="Sending the request body.")
    pool: float = Field(10.0, gt=0, description="Waiting for a free pooled connection.")
    total: float = Field(
        120.0, gt=0, description="One attempt end to end (guards against trickling replies)."
    )


class BreakerSettings(BaseModel):
    """Circuit breaker: open after consecutive failed attempts, probe after a cooldown."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    failures: int = Field(5, ge=1, description="Consecutive failed attempts that open it.")
    open_s: float = Field(30.0, gt=0, description="Seconds open before one half-open probe.")


class RubricSettings(BaseModel):
    """The optional six-dimension rubric (one more JSON field in the same request)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    weights: dict[str, float] = Field(
        default_factory=lambda: dict.fromkeys(RUBRIC_DIMENSIONS, 1.0),
        description="Weight of each normalised dimension in rubric_composite; "
        "harmfulness's weight is multiplied by 1.5 when the answer is questionable.",
    )

    @field_validator("weights")
    @classmethod
    def _known_dimensions(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(RUBRIC_DIMENSIONS))
        if unknown:
            raise ValueError(f"unknown rubric dimensions {unknown}; known: {RUBRIC_DIMENSIONS}")
        if any(w < 0 for w in value.values()):
            raise ValueError("rubric weights must be >= 0")
        merged = dict.fromkeys(RUBRIC_DIMENSIONS, 1.0)
        merged.update(value)
        if sum(merged.values()) <= 0:
            raise ValueError("at least one rubric weight must be > 0")
        return merged


JudgeRole = Literal["primary", "shadow", "escalation"]


class CanarySettings(BaseModel):
    """Canaries: shipped traces with known verdicts, judged like any other (see .canary)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    every_s: float | None = Field(
        900.0, gt=0, description="One canary per this many seconds (None: not by time)."
    )
    every_judged: int | None = Field(
        None,
        ge=1,
        description="One canary per this many real traces admitted (None: not by count).",
    )
    window: int = Field(
        20, ge=1, le=1000, description="canary_accuracy is over the last this many canaries."
    )
    path: str | None = Field(
        None, description="A JSONL file of canaries replacing the shipped set."
    )


class EscalationSettings(BaseModel):
    """When an ``escalation`` judge is asked, after the primary's verdict on a trace."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    judge_high: float = Field(0.7, ge=0, le=1, description="Primary faithfulness >= this ...")
    lexical_low: float = Field(0.3, ge=0, le=1, description="... but groundedness_lexical < this.")
    judge_low: float = Field(0.3, ge=0, le=1, description="Primary faithfulness <= this ...")
    lexical_high: float = Field(
        0.7, ge=0, le=1, description="... but groundedness_lexical >= this."
    )
    borderline: tuple[float, float] | None = Field(
        (0.4, 0.6), description="Primary faithfulness in [low, high] (None: never borderline)."
    )

    @field_validator("borderline")
    @classmethod
    def _ordered(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and not 0 <= value[0] <= value[1] <= 1:
            raise ValueError("borderline must be [low, high] with 0 <= low <= high <= 1")
        return value


class AgreementSettings(BaseModel):
    """Rolling agreement between judges and with thumbs (the primary judge's settings apply)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metrics: tuple[str, ...] = Field(
        ("faithfulness", "answer_relevance", "context_relevance"),
        description="Scores compared between two judges.",
    )
    window: int = Field(200, ge=2, le=10_000, description="Pairs kept per app, judges, metric.")
    feedback_window: int = Field(
        500, ge=2, le=10_000, description="(faithfulness, thumbs) pairs kept per app and judge."
    )
    close_within: float = Field(0.2, ge=0, le=1, description="share_close: |diff| <= this.")
    pass_at: float = Field(0.5, ge=0, le=1, description="kappa: a score >= this passes.")
    disagreement: float = Field(
        0.3, ge=0, le=1, description="Flag judge_disagreement when |diff| > this on any metric."
    )
    faithful_at: float = Field(
        0.8, ge=0, le=1, description="faithfulness >= this with thumbs down: feedback disagreement."
    )
    unfaithful_at: float = Field(
        0.3, ge=0, le=1, description="faithfulness <= this with thumbs up: feedback disagreement."
    )
    pending: int = Field(
        4096, ge=1, description="Traces remembered while waiting for another judge's verdict."
    )


class JudgeSettings(BaseModel):
    """One OpenAI-compatible judge endpoint and how the sidecar may use it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(
        "default",
        pattern=r"^[A-Za-z0-9_.-]{1,40}$",
        description="Label of this judge in metrics (several judges may be configured).",
    )
    url: str = Field(
        "http://127.0.0.1:8080/v1",
        description="Base URL of an OpenAI-compatible API; {url}/chat/completions is called.",
    )
    model: str = Field("judge", min_length=1, description="Model name sent to the endpoint.")
    api_key: SecretStr | None = Field(
        None, description="Bearer token; from the environment or a secret file, never a flag."
    )
    trust_env: bool = Field(
        True, description="Honour HTTP(S)_PROXY / NO_PROXY and SSL_CERT_FILE from the environment."
    )
    timeouts: JudgeTimeouts = Field(default_factory=JudgeTimeouts)
    concurrency: int = Field(4, ge=1, le=256, description="Requests in flight (= workers).")
    max_retries: int = Field(3, ge=0, le=10, description="Retries of a transient failure.")
    backoff_base_s: float = Field(0.5, gt=0, description="First backoff ceiling (full jitter).")
    backoff_max_s: float = Field(20.0, gt=0, description="Backoff ceiling.")
    retry_after_max_s: float = Field(
        60.0, ge=0, description="A Retry-After longer than this is not waited for: give up."
    )
    breaker: BreakerSettings = Field(default_factory=BreakerSettings)
    json_mode: Literal["auto", "schema", "inline", "on", "off"] = Field(
        "auto",
        description="response_format sent: schema (the reply's JSON schema, OpenAI "
        "json_schema form), inline (json_object + schema, llama-cpp-python), on (json_object), "
        "off; auto = schema, stepping down each time the endpoint rejects the field.",
    )
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    max_output_tokens: int = Field(1024, ge=64, description="max_tokens of each request.")
    rate_per_minute: float = Field(
        60.0, gt=0, description="Token bucket: judged traces per minute (burst: one minute)."
    )
    priority_reserve: float = Field(
        0.25,
        ge=0.0,
        le=1.0,
        description="Share of the bucket and of the daily cap that only priority samples "
        "(thumbs_down, low_retrieval_score, flag:*) may use.",
    )
    daily_usd_cap: float | None = Field(
        None, gt=0, description="Stop judging for the UTC day once this much is spent."
    )
    usd_per_1k_prompt_tokens: float = Field(0.0, ge=0.0)
    usd_per_1k_completion_tokens: float = Field(0.0, ge=0.0)
    cache_size: int = Field(10_000, ge=0, description="Judgements kept by content hash (LRU).")
    queue_size: int = Field(64, ge=1, description="Traces waiting for a worker.")
    shutdown_timeout_s: float = Field(
        10.0, ge=0, description="On close, how long in-flight and queued work may finish."
    )
    prompt_version: str = Field(
        "rag_v1", pattern=r"^[A-Za-z0-9_.-]+$", description="prompts/<version>.txt"
    )
    prompt_dir: str | None = Field(
        None, description="Directory with custom prompt files; default: the shipped prompts."
    )
    max_context_tokens: int = Field(
        1500,
        ge=50,
        description="Budget for all chunk texts together, estimated at 4 characters per token; "
        "shared fairly (short chunks whole, long ones cut at a word boundary).",
    )
    max_answer_tokens: int = Field(
        800, ge=20, description="Longer answers are cut (same 4 chars/token estimate)."
    )
    max_chunks: int = Field(
        20, ge=1, description="Only the first max_chunks chunks (in rank order) are judged."
    )
    redact_pii: bool = Field(
        True, description="Replace emails, phone and card numbers before anything is sent."
    )
    rubric: RubricSettings = Field(default_factory=RubricSettings)
    role: JudgeRole = Field(
        "primary",
        description="primary: judges every sample; shadow: the same samples (at `share`), "
        "for agreement; escalation: only where the primary and the heuristics disagree.",
    )
    share: float = Field(
        1.0, ge=0, le=1, description="shadow: share of the primary's samples it also judges."
    )
    escalation: EscalationSettings = Field(default_factory=EscalationSettings)
    canary: CanarySettings = Field(default_factory=CanarySettings)
    agreement: AgreementSettings = Field(default_factory=AgreementSettings)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("judge url must start with http:// or https://")
        return value.rstrip("/")

    def cap_problem(self) -> str | None:
        """Why the daily cap cannot work as set (None: it can)."""
        if self.daily_usd_cap is not None and not (
            self.usd_per_1k_prompt_tokens or self.usd_per_1k_completion_tokens
        ):
            return (
                f"daily_usd_cap of judge {self.name!r} needs usd_per_1k_prompt_tokens and/or "
                "usd_per_1k_completion_tokens (at zero prices nothing is spent: the cap "
                "would never bind)"
            )
        return None

    @property
    def completions_url(self) -> str:
        """The chat-completions endpoint."""
        return f"{self.url}/chat/completions"

    def cost_usd(self, prompt_tokens: int, completion_tokens: int) -> float:
        """What a reply cost at the configured prices."""
        return (
            prompt_tokens * self.usd_per_1k_prompt_tokens
            + completion_tokens * self.usd_per_1k_completion_tokens
        ) / 1000.0
