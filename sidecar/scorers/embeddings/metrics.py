"""Score names and Prometheus metrics of the embeddings tier (no numpy needed here).

The scores themselves travel in ``type="embedding"`` events and reach
``rag_sidecar_score{metric=...}`` through the normal sinks. Every label here is
a closed set.

=================================================  ==========================================
``rag_sidecar_embeddings_scored_total``            origin (``trace``: vectors shipped in
                                                   the trace, ``model``: the local model)
``rag_sidecar_embeddings_skipped_total``           reason: sampled traces with no embedding
                                                   event — ``backpressure``, ``no_embeddings``,
                                                   ``no_scores``, ``failed``, ``write_failed``,
                                                   ``shutdown``
``rag_sidecar_embeddings_score_skipped_total``     metric, reason (``missing``, ``invalid``,
                                                   ``empty``): one score left out of an event
``rag_sidecar_embeddings_sentences_total``         cache (``hit``, ``miss``): texts the model
                                                   needed, ``miss`` = actually encoded
``rag_sidecar_embeddings_seconds``                 embedding + scoring time per trace
``rag_sidecar_embeddings_queue_depth``             traces waiting for the worker thread
``rag_sidecar_embeddings_queue_capacity``          its bound (``embeddings.queue_size``)
=================================================  ==========================================
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

EMBEDDING_METRICS: Final[dict[str, str]] = {
    "answer_relevance_semantic": "Cosine of the query and answer embeddings (clipped at 0).",
    "groundedness_semantic": "Mean over answer sentences of the best cosine against any "
    "chunk sentence (clipped at 0).",
    "groundedness_semantic_min": "The least-supported answer sentence's best cosine: one "
    "unsupported sentence in a long answer shows here.",
}
"""Score name → description (all ratios in [0, 1])."""

SKIP_REASONS: Final = (
    "backpressure",
    "no_embeddings",
    "no_scores",
    "failed",
    "write_failed",
    "shutdown",
)
SCORE_SKIP_REASONS: Final = ("missing", "invalid", "empty")
ORIGINS: Final = ("trace", "model")
SECONDS_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class EmbeddingMetrics:
    """The embeddings tier's metric families on one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.scored = Counter(
            "rag_sidecar_embeddings_scored",
            "Embedding events written, by where the vectors came from (trace, model).",
            ("origin",),
            registry=registry,
        )
        self.skipped = Counter(
            "rag_sidecar_embeddings_skipped",
            "Sampled traces that got no embedding event, by reason.",
            ("reason",),
            registry=registry,
        )
        self.score_skipped = Counter(
            "rag_sidecar_embeddings_score_skipped",
            "Embedding scores left out of an event (missing, invalid or empty input).",
            ("metric", "reason"),
            registry=registry,
        )
        self.sentences = Counter(
            "rag_sidecar_embeddings_sentences",
            "Texts the local model needed, by sentence cache outcome (hit, miss).",
            ("cache",),
            registry=registry,
        )
        self.seconds = Histogram(
            "rag_sidecar_embeddings_seconds",
            "Embedding and scoring time per trace, in the worker thread.",
            buckets=SECONDS_BUCKETS,
            registry=registry,
        )
        self.queue_depth = Gauge(
            "rag_sidecar_embeddings_queue_depth",
            "Traces waiting for the embeddings worker.",
            registry=registry,
        )
        self.queue_capacity = Gauge(
            "rag_sidecar_embeddings_queue_capacity",
            "Bound of the embeddings queue.",
            registry=registry,
        )
        for reason in SKIP_REASONS:
            self.skipped.labels(reason)
        for origin in ORIGINS:
            self.scored.labels(origin)
        for cache in ("hit", "miss"):
            self.sentences.labels(cache)

    def bind(self, queue_depth: Callable[[], float], capacity: int) -> None:
        """Export the queue's depth and capacity."""
        self.queue_depth.set_function(queue_depth)
        self.queue_capacity.set(capacity)
