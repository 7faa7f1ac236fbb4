"""rag-sidecar: an online evaluator for production RAG.

Reads RAG traces (files, Kafka, OTLP), scores every trace with cheap heuristics
and a sample with an LLM judge, and emits Prometheus metrics and scored events.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .events import ScoredEvent
from .trace import Chunk, Feedback, Trace, decode_trace

__all__ = ["Chunk", "Feedback", "ScoredEvent", "Trace", "__version__", "decode_trace"]
