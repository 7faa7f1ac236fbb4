"""Settings of the OTLP receivers (``otlp``) and of trace assembly (``otlp.assembly``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class AssemblySettings(BaseModel):
    """How spans are assembled into traces."""

    model_config = ConfigDict(extra="forbid")

    settle_s: float = Field(
        1.0, ge=0, description="Quiet time after the root arrived before a trace is emitted."
    )
    root_grace_s: float = Field(
        5.0, ge=0, description="Quiet time after which the topmost span stands in for the root."
    )
    straggler_timeout_s: float = Field(
        30.0, gt=0, description="Quiet time after which an incomplete trace is finalised."
    )
    not_rag_window_s: float = Field(
        15.0,
        ge=0,
        description="How long a trace closed without AI spans can still be reopened by late "
        "spans (another service's exporter, e.g. a BatchSpanProcessor's 5 s delay).",
    )
    max_pending_traces: int = Field(10_000, ge=1, description="Traces held while assembling.")
    max_pending_bytes: int = Field(
        256 << 20,
        ge=1 << 20,
        description="Approximate bytes of span content held while assembling; above 90% "
        "exporters get 429/RESOURCE_EXHAUSTED, at the limit the oldest trace is evicted.",
    )
    max_spans_per_trace: int = Field(512, ge=1, description="Spans held per trace.")
    emitted_memory: int = Field(
        50_000, ge=0, description="Finalised trace ids remembered to detect late spans."
    )
    prompt_version_attribute: str = Field(
        "prompt.version",
        description="Span or resource attribute read as prompt_version "
        "(llm.prompt_template.version is the fallback).",
    )
    ignored_scopes: list[str] = Field(
        default_factory=lambda: ["rag-sidecar"],
        description="Instrumentation scopes whose spans are ignored (the sidecar's own spans).",
    )


class OtlpSettings(BaseModel):
    """The OTLP receivers (``otlp+http://`` / ``otlp+grpc://`` sources)."""

    model_config = ConfigDict(extra="forbid")

    token: SecretStr | None = Field(
        None, description="Require 'Authorization: Bearer <token>' on export requests."
    )
    max_body_bytes: int = Field(
        8 << 20, ge=1024, description="Largest request body, compressed or not (413 above)."
    )
    body_timeout_s: float = Field(
        30.0, gt=0, description="Time to receive one request body over HTTP (408 after it)."
    )
    max_connections: int = Field(
        256,
        ge=1,
        description="HTTP connections served at once; beyond it the longest-idle keep-alive "
        "connection is closed, or 503 + Retry-After when none is idle.",
    )
    max_in_flight: int = Field(
        5_000, ge=1, description="Assembled traces not yet written; above it: 429 + Retry-After."
    )
    retry_after_s: float = Field(2.0, gt=0, description="Retry-After sent when saturated.")
    expire_interval_s: float = Field(
        0.25, gt=0, description="How often settled and straggling traces are emitted."
    )
    assembly: AssemblySettings = Field(default_factory=AssemblySettings)
