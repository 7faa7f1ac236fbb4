"""Settings: one validated object, built once at start.

Sources of values, highest precedence first: command-line flags, environment
variables (prefix ``RAG_SIDECAR_``, nested fields with ``__``, e.g.
``RAG_SIDECAR_PIPELINE__BATCH_SIZE=512``), an optional YAML file
(``--config FILE``), then defaults. Unknown keys are errors everywhere
(``extra="forbid"``): a typo fails at start, not silently. URIs are parsed into
typed specs here, so stages never see a raw string.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from .errors import ConfigError
from .sampling import SamplingSettings
from .scorers.heuristics.settings import HeuristicsSettings

# --------------------------------------------------------------------------- URIs


@dataclass(frozen=True, slots=True)
class FileSpec:
    """A JSONL file (``file:PATH``); ``path=None`` means stdin/stdout (``-``)."""

    path: Path | None
    uri: str

    @property
    def name(self) -> str:
        """A short, label-safe name for metrics."""
        return "stdin" if self.path is None else "file"


SourceSpec = FileSpec
SinkSpec = FileSpec


def _parse_file_uri(uri: str, what: str) -> FileSpec:
    uri = uri.strip()
    if uri == "-":
        return FileSpec(None, uri)
    if uri.startswith("file://"):
        rest = uri[len("file://") :]
    elif uri.startswith("file:"):
        rest = uri[len("file:") :]
    elif "://" in uri:
        scheme = uri.split("://", 1)[0]
        raise ValueError(f"unsupported {what} URI scheme {scheme!r} in {uri!r}")
    else:
        rest = uri  # a bare path
    if not rest:
        raise ValueError(f"empty path in {what} URI {uri!r}")
    return FileSpec(Path(rest), uri)


def parse_source_uri(uri: str) -> SourceSpec:
    """Parse a source URI: ``file:PATH``, a bare path, or ``-`` for stdin."""
    return _parse_file_uri(uri, "source")


def parse_sink_uri(uri: str) -> SinkSpec:
    """Parse an events or dead-letter URI: ``file:PATH``, a bare path, or ``-`` for stdout."""
    return _parse_file_uri(uri, "sink")


# ----------------------------------------------------------------------- settings


class HttpSettings(BaseModel):
    """The HTTP server for /metrics, /healthz and /readyz."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field("0.0.0.0", description="Bind address (0.0.0.0 so Prometheus can scrape).")
    port: int = Field(9464, ge=0, le=65535, description="0 picks a free port.")
    max_label_values: int = Field(
        100, ge=1, description="Distinct values kept per trace label; the rest become 'other'."
    )


class PipelineSettings(BaseModel):
    """Queues, batching and lifecycle."""

    model_config = ConfigDict(extra="forbid")

    queue_size: int = Field(64, ge=1, description="Batches buffered between two stages.")
    batch_size: int = Field(256, ge=1, description="Records per batch read from a source.")
    overflow: Literal["block", "drop"] = Field(
        "block",
        description="When a queue is full: 'block' applies backpressure to the source; "
        "'drop' discards the batch and counts it (lossy: never acknowledged).",
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
        default_factory=list, description="Source URIs: file:PATH, a bare path, or '-' (stdin)."
    )
    follow: bool = Field(False, description="Tail file sources instead of stopping at their end.")
    events: str | None = Field(None, description="Scored-events sink URI (file:PATH or '-').")
    dead_letter: str = Field(
        "file:dead-letter.jsonl", description="Where invalid records go, with their reason."
    )
    http: HttpSettings = Field(default_factory=HttpSettings)
    pipeline: PipelineSettings = Field(default_factory=PipelineSettings)
    sampling: SamplingSettings = Field(default_factory=SamplingSettings)
    heuristics: HeuristicsSettings = Field(default_factory=HeuristicsSettings)
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

    def source_specs(self) -> list[SourceSpec]:
        """The parsed source URIs."""
        return [parse_source_uri(u) for u in self.sources]

    def events_spec(self) -> SinkSpec | None:
        """The parsed events URI, if any."""
        return None if self.events is None else parse_sink_uri(self.events)

    def dead_letter_spec(self) -> SinkSpec:
        """The parsed dead-letter URI."""
        return parse_sink_uri(self.dead_letter)


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
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}")
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
