"""Settings of trace assembly (``otlp.assembly``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


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
