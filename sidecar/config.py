"""Settings: one validated object, built once at start.

Sources of values, highest precedence first: command-line flags, environment
variables (prefix ``RAG_SIDECAR_``, nested fields with ``__``, e.g.
``RAG_SIDECAR_PIPELINE__BATCH_SIZE=512``), an optional YAML file
(``--config FILE``), then defaults. Unknown keys are errors everywhere
(``extra="forbid"``): a typo fails at start, not silently. URIs are parsed into
typed specs here, so stages never see a raw string.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from .drift.settings import DriftSettings
from .errors import ConfigError
from .feedback.settings import FeedbackSettings
from .kafka_settings import KafkaSettings as KafkaSettings
from .sampling import SamplingSettings
from .scorers.embeddings.settings import EmbeddingsSettings
from .scorers.heuristics.settings import HeuristicsSettings
from .scorers.judge.router import check_judges, judge_list
from .scorers.judge.settings import JudgeSettings
from .secrets import secret_from_env
from .sinks.labelstudio.settings import ReviewSettings
from .sources.otlp.settings import OtlpSettings as OtlpSettings
from .uris import (
    FileSpec,
    KafkaSpec,
    OtlpSpec,
    SinkSpec,
    SourceSpec,
    parse_sink_uri,
    parse_source_uri,
)

__all__ = [
    "FileSpec",
    "KafkaSpec",
    "OtlpSpec",
    "Settings",
    "SinkSpec",
    "SourceSpec",
    "load_settings",
    "parse_sink_uri",
    "parse_source_uri",
]

# ----------------------------------------------------------------------- settings


class HttpSettings(BaseModel):
    """The HTTP server for /metrics, /healthz and /readyz."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field("0.0.0.0", description="Bind address (0.0.0.0 so Prometheus can scrape).")
    port: int = Field(9464, ge=0, le=65535, description="0 picks a free port.")
    max_label_values: int = Field(
        100, ge=1, description="Distinct values kept per trace label; the rest become 'other'."
    )
    label_ttl_s: float | None = Field(
        86_400.0,
        gt=0,
        description="An app/model/prompt_version not seen for this long leaves /metrics and "
        "frees its label slots (null: never).",
    )


class PipelineSettings(BaseModel):
    """Queues, batching and lifecycle."""

    model_config = ConfigDict(extra="forbid")

    queue_size: int = Field(
        8,
        ge=1,
        description="Batches buffered between two stages (shallow keeps latency and RSS low).",
    )
    batch_size: int = Field(256, ge=1, description="Records per batch read from a source.")
    overflow: Literal["block", "drop"] = Field(
        "block",
        description="When a queue is full: 'block' applies backpressure to the source; "
        "'drop' discards the batch and counts it (lossy: never acknowledged).",
    )
    background_overflow: Literal["block", "drop"] = Field(
        "drop",
        description="When the judge's or the embeddings' queue is full: 'drop' skips the trace "
        "for that tier (counted as backpressure: a slow judge never slows scoring); 'block' "
        "waits for room (score and replay always block: every sample is judged).",
    )
    max_record_bytes: int = Field(1 << 20, ge=256, description="Larger records are dead-lettered.")
    stall_timeout_s: float = Field(
        60.0, gt=0, description="/healthz fails when a stage holds work this long without progress."
    )
    drain_timeout_s: float = Field(30.0, gt=0, description="Max time to drain queues on shutdown.")


class LogSettings(BaseModel):
    """Structured logging."""

    model_config = ConfigDict(extra="forbid")

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["json", "text"] = "json"


class Settings(BaseSettings):
    """Everything the sidecar needs, validated once at start."""

    model_config = SettingsConfigDict(
        env_prefix="RAG_SIDECAR_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    sources: list[str] = Field(
        default_factory=list,
        description="Source URIs: file:PATH, a bare path, '-' (stdin), "
        "kafka://HOST:PORT[,HOST:PORT]/TOPIC[?group=G], otlp+http:// or otlp+grpc://HOST:PORT.",
    )
    follow: bool = Field(False, description="Tail file sources instead of stopping at their end.")
    events: str | None = Field(
        None, description="Scored-events sink URI (file:PATH, '-' or kafka://HOST:PORT/TOPIC)."
    )
    dead_letter: str = Field(
        "file:dead-letter.jsonl", description="Where invalid records go, with their reason."
    )
    http: HttpSettings = Field(default_factory=HttpSettings)
    pipeline: PipelineSettings = Field(default_factory=PipelineSettings)
    sampling: SamplingSettings = Field(default_factory=SamplingSettings)
    heuristics: HeuristicsSettings = Field(default_factory=HeuristicsSettings)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    otlp: OtlpSettings = Field(default_factory=OtlpSettings)
    drift: DriftSettings = Field(default_factory=DriftSettings)
    feedback: FeedbackSettings = Field(
        default_factory=FeedbackSettings,
        description="Joining late feedback records to their traces (see README, Late feedback).",
    )
    judge: JudgeSettings | list[JudgeSettings] | None = Field(
        None,
        description="The LLM judge for sampled traces (off unless configured): one judge, or "
        "a list with one role=primary and any shadow / escalation judges.",
    )
    embeddings: EmbeddingsSettings = Field(
        default_factory=EmbeddingsSettings,
        description="Semantic relevance and groundedness from sentence embeddings on a "
        "hash-sampled share of traces (off by default; needs the 'embeddings' extra).",
    )
    scores_otlp: str | None = Field(
        None,
        description="Send scores back to a tracing backend: otlp+http://HOST:PORT or "
        "otlp+grpc://HOST:PORT (evaluator spans with gen_ai.evaluation.result events).",
    )
    review: ReviewSettings | None = Field(
        None,
        description="Export traces needing human review as Label Studio tasks (off unless set).",
    )
    log: LogSettings = Field(default_factory=LogSettings)

    @field_validator("sources")
    @classmethod
    def _check_sources(cls, value: list[str]) -> list[str]:
        for uri in value:
            parse_source_uri(uri)
        if value.count("-") > 1:
            raise ValueError("stdin ('-') can be a source only once")
        return value

    @field_validator("events", "dead_letter")
    @classmethod
    def _check_sink(cls, value: str | None) -> str | None:
        if value is not None:
            parse_sink_uri(value)
        return value

    @field_validator("scores_otlp")
    @classmethod
    def _check_otlp_uri(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("otlp+http://", "otlp+grpc://")):
            raise ValueError("must be otlp+http://HOST:PORT or otlp+grpc://HOST:PORT")
        return value

    @field_validator("judge")
    @classmethod
    def _check_judges(
        cls, value: JudgeSettings | list[JudgeSettings] | None
    ) -> JudgeSettings | list[JudgeSettings] | None:
        check_judges(judge_list(value))
        return value

    @model_validator(mode="after")
    def _judge_key_from_env(self) -> Settings:
        """A judge without a key gets one from the environment or a secret file.

        One judge: ``RAG_SIDECAR_JUDGE_API_KEY`` or ``..._FILE``. In a list, judge
        ``NAME`` reads ``RAG_SIDECAR_JUDGE_API_KEY_<NAME>`` (upper case, ``-``/``.``
        as ``_``) or its ``_FILE``; the unnamed variables serve only the primary,
        so one provider's key is never sent to another's endpoint.
        """
        judge = self.judge
        if isinstance(judge, JudgeSettings):
            self.judge = _with_env_key(judge, "RAG_SIDECAR_JUDGE_API_KEY")
        elif judge is not None:
            out = []
            for one in judge:
                own = "RAG_SIDECAR_JUDGE_API_KEY_" + re.sub(r"[^A-Z0-9]", "_", one.name.upper())
                keyed = _with_env_key(one, own)
                if keyed.role == "primary":
                    keyed = _with_env_key(keyed, "RAG_SIDECAR_JUDGE_API_KEY")
                out.append(keyed)
            self.judge = out
        return self

    @model_validator(mode="after")
    def _check_at_least_once(self) -> Settings:
        kafka = any(isinstance(parse_source_uri(u), KafkaSpec) for u in self.sources)
        if kafka and self.pipeline.overflow == "drop":
            raise ValueError(
                "pipeline.overflow=drop would skip Kafka offsets (data loss); "
                "Kafka sources use backpressure: set overflow=block"
            )
        return self

    def source_specs(self) -> list[SourceSpec]:
        """The parsed source URIs."""
        return [parse_source_uri(u) for u in self.sources]

    def events_spec(self) -> SinkSpec | None:
        """The parsed events URI, if any."""
        return None if self.events is None else parse_sink_uri(self.events)

    def dead_letter_spec(self) -> SinkSpec:
        """The parsed dead-letter URI."""
        return parse_sink_uri(self.dead_letter)


def _with_env_key(judge: JudgeSettings, var: str) -> JudgeSettings:
    """``judge`` with its key from env ``var`` or the file named by ``var_FILE``, if it has none."""
    if judge.api_key is not None:
        return judge
    key = secret_from_env(var)
    return judge.model_copy(update={"api_key": key}) if key is not None else judge


class _DictSource(PydanticBaseSettingsSource):
    """Values from an already-parsed YAML document."""

    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = data

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or "syntax error"
        raise ConfigError(f"config file {path} is not valid YAML{where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return data


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build :class:`Settings` from flags (``overrides``), env, YAML and defaults.

    Raises :class:`~sidecar.errors.ConfigError` with a one-line message.
    """
    file_data = _read_yaml(config_file) if config_file is not None else {}

    class _Settings(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings, env_settings, _DictSource(settings_cls, file_data))

    _Settings.__name__ = "Settings"
    try:
        return _Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        raise ConfigError(f"invalid configuration: {_describe(exc)}") from None
    except SettingsError as exc:  # an environment value that should be JSON (no value shown)
        raise ConfigError(
            f"invalid configuration: {exc}: list and object values in the environment are "
            """JSON, e.g. RAG_SIDECAR_SOURCES='["file:traces.jsonl"]'"""
        ) from None
