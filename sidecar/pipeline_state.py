"""The pipeline's bookkeeping: per-stage progress (for /healthz), queue gauges, own metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


@dataclass(slots=True)
class StageState:
    """Progress bookkeeping of one internal stage, for /healthz and metrics."""

    name: str
    queue: asyncio.Queue[Any]
    busy_since: float | None = None
    last_progress: float = field(default_factory=time.monotonic)

    def stalled_for(self, now: float) -> float:
        """Seconds this stage has held work without finishing it (0 when idle)."""
        if self.busy_since is not None:
            return now - self.busy_since
        if self.queue.qsize() > 0:
            return now - self.last_progress
        return 0.0


class QueueCollector(Collector):
    """Exports each stage's queue depth and capacity at scrape time."""

    def __init__(self, stages: Sequence[StageState]) -> None:
        self._stages = stages

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily(
            "rag_sidecar_queue_depth", "Batches waiting in front of a stage.", labels=["stage"]
        )
        cap = GaugeMetricFamily(
            "rag_sidecar_queue_capacity", "Capacity of a stage's queue.", labels=["stage"]
        )
        for st in self._stages:
            depth.add_metric([st.name], st.queue.qsize())
            cap.add_metric([st.name], st.queue.maxsize)
        yield depth
        yield cap


class PipelineMetrics:
    """The pipeline's own metrics (throughput, dead letters, drops, sink errors)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.traces = Counter(
            "rag_sidecar_traces",
            "Records processed, by source and outcome (scored, invalid, dropped).",
            ("source", "outcome"),
            registry=registry,
        )
        self.dead_letters = Counter(
            "rag_sidecar_dead_letters",
            "Records sent to the dead-letter sink, by reason.",
            ("reason",),
            registry=registry,
        )
        self.dropped = Counter(
            "rag_sidecar_queue_dropped",
            "Records dropped because a stage's queue was full (overflow=drop).",
            ("stage",),
            registry=registry,
        )
        self.sink_errors = Counter(
            "rag_sidecar_sink_errors",
            "Sink write failures, by sink and kind (retryable, permanent).",
            ("sink", "kind"),
            registry=registry,
        )
        self.latency = Histogram(
            "rag_sidecar_processing_seconds",
            "Per batch: from its first record's arrival to its results being written.",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )
