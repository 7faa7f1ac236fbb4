"""The optional embeddings tier: semantic answer relevance and groundedness, off by default.

Between the heuristics (every trace, lexical) and the LLM judge (a sample,
expensive): a hash-sampled share of traces is scored with sentence embeddings,
either the vectors the trace ships in ``metadata.embeddings`` (:mod:`.supplied`)
or the local int8 ONNX all-MiniLM-L6-v2 (:mod:`.model`), in a worker thread
behind a bounded queue (:class:`EmbeddingStage`). Scores: :data:`EMBEDDING_METRICS`.

This package imports without numpy; :func:`build_embeddings` loads the scorer
(numpy, and onnxruntime + tokenizers for the model) only when enabled.
"""

from __future__ import annotations

import hashlib

from prometheus_client import CollectorRegistry

from ...errors import ConfigError
from .metrics import EMBEDDING_METRICS, SCORE_SKIP_REASONS, SKIP_REASONS, EmbeddingMetrics
from .settings import EmbeddingsSettings
from .stage import EmbeddingStage, Outcome, ScoreFn

__all__ = [
    "EMBEDDING_METRICS",
    "SCORE_SKIP_REASONS",
    "SKIP_REASONS",
    "EmbeddingMetrics",
    "EmbeddingStage",
    "EmbeddingsSettings",
    "Outcome",
    "ScoreFn",
    "build_embeddings",
    "embeddings_version",
]

SCORER_VERSION = 1


def embeddings_version(settings: EmbeddingsSettings, fingerprint: str) -> str:
    """``embeddings-N+HASH``: the code version plus what can change a score."""
    s = settings
    key = f"{fingerprint}|{s.max_tokens}|{s.max_answer_sentences}|{s.max_chunk_sentences}"
    if not s.trace_embeddings:  # shipped vectors are embedded by the model instead
        key += "|model-only"
    return f"embeddings-{SCORER_VERSION}+{hashlib.blake2b(key.encode(), digest_size=4).hexdigest()}"


def build_embeddings(
    settings: EmbeddingsSettings, registry: CollectorRegistry
) -> EmbeddingStage | None:
    """The stage when enabled (None otherwise); :class:`ConfigError` when it cannot run."""
    if not settings.enabled:
        return None
    try:
        from .scorer import EmbeddingScorer
    except ImportError as exc:
        raise ConfigError(
            f"embeddings.enabled needs numpy ({exc.name} is missing): "
            "pip install 'rag-sidecar[embeddings]'"
        ) from None
    encoder, fingerprint, name = None, "trace-only", ""
    if settings.local_model:
        from .model import MODEL_ID, load_encoder

        encoder, fingerprint = load_encoder(settings)
        name = settings.model_path.name if settings.model_path is not None else MODEL_ID
    scorer = EmbeddingScorer(settings, encoder, model_name=name)
    version = embeddings_version(settings, fingerprint)
    return EmbeddingStage(settings, registry, scorer, version=version)
