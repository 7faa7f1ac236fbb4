"""The embeddings tier as a pipeline stage: hash-sampled, a bounded queue, one worker thread.

The pipeline calls :meth:`EmbeddingStage.offer` for every scored trace *after*
its heuristic event is written, so neither the heuristic path nor the source's
acknowledgement waits for the model. ``offer`` decides at once: not in the
sample (``h(salt, trace_id) >= rate``) → ``False``, not counted; queue full →
``False``, ``skipped{reason="backpressure"}``; otherwise queued.

One asyncio worker hands each trace to a single-thread executor (onnxruntime
releases the GIL while it runs) and writes the result as a second event for the
trace, ``type="embedding"``, through the ``write`` callable given to
:meth:`start`. A trace with no usable vectors or no computable score writes
nothing and is counted; a failure is logged and counted, never raised.
:meth:`aclose` lets queued work finish within ``shutdown_timeout_s`` and counts
the rest as ``skipped{reason="shutdown"}``.

The event copies the heuristic event's labels, source and timestamp; its
``sampled`` is empty and ``feedback`` null, so sinks count neither twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from prometheus_client import CollectorRegistry

from ...events import Sampling, ScoredEvent
from ...sampling import hash_unit
from ...stages import Result
from ...trace import Trace
from ..background import BackgroundStage, Write, derived_event
from .metrics import EmbeddingMetrics
from .settings import EmbeddingsSettings

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Outcome:
    """What the scorer made of one trace."""

    origin: Literal["trace", "model"] | None
    """Where the vectors came from; None: the trace had none and no model is loaded."""
    scores: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    """Score name → why it is absent (``missing``, ``invalid``, ``empty``)."""
    detail: dict[str, Any] = field(default_factory=dict)
    cache_hits: int = 0
    encoded: int = 0


ScoreFn = Callable[[Trace], Outcome]


class EmbeddingStage(BackgroundStage[Result]):
    """Scores sampled traces in a worker thread and writes ``type="embedding"`` events."""

    def __init__(
        self,
        settings: EmbeddingsSettings,
        registry: CollectorRegistry,
        score: ScoreFn,
        *,
        version: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(
            queue_size=settings.queue_size,
            shutdown_timeout_s=settings.shutdown_timeout_s,
            workers=["embeddings"],
        )
        self.settings = settings
        self.version = version
        self.metrics = EmbeddingMetrics(registry)
        self._score = score
        self._clock = clock
        self._executor: ThreadPoolExecutor | None = None
        self.metrics.bind(self._queue.qsize, settings.queue_size)

    def wants(self, trace_id: str) -> bool:
        """Whether a trace is in the embeddings sample (deterministic, like the judge's)."""
        rate = self.settings.rate
        return rate > 0.0 and (rate >= 1.0 or hash_unit(trace_id, self.settings.salt) < rate)

    # ------------------------------------------------------------------ lifecycle

    async def start(self, write: Write) -> None:
        """Start the worker; embedding events are handed to ``write``."""
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embeddings")
        await super().start(write)

    async def aclose(self) -> None:
        """Stop taking work; let it finish within ``shutdown_timeout_s``; count the rest."""
        await super().aclose()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def _count_shutdown(self, n: int) -> None:
        self.metrics.skipped.labels("shutdown").inc(n)
        log.warning("embeddings stopped with work left", extra={"fields": {"n": n}})

    # ---------------------------------------------------------------------- offer

    async def room_for(self, result: Result) -> None:
        """Wait until :meth:`offer` would not refuse ``result`` for backpressure."""
        if self.wants(result.event.trace_id):
            await self.wait_for_room()

    def offer(self, result: Result) -> bool:
        """Queue a trace if it is in the sample, without blocking; False when not queued."""
        if not self.wants(result.event.trace_id):
            return False
        if self._closing:
            self.metrics.skipped.labels("shutdown").inc()
            return False
        try:
            self._queue.put_nowait(result)
        except asyncio.QueueFull:
            self.metrics.skipped.labels("backpressure").inc()
            return False
        return True

    # --------------------------------------------------------------------- worker

    async def _run(self, result: Result) -> None:
        loop = asyncio.get_running_loop()
        t0 = time.perf_counter()
        outcome = await loop.run_in_executor(self._executor, self._score, result.trace)
        self.metrics.seconds.observe(time.perf_counter() - t0)
        await self._emit(result, outcome)

    def _run_failed(self, result: Result, exc: Exception) -> None:
        self.metrics.skipped.labels("failed").inc()
        log.warning(
            "trace not embedded",
            extra={
                "fields": {
                    "trace_id": result.trace.trace_id,
                    "error": f"{type(exc).__name__}: {exc}",
                }
            },
        )

    def _write_failed(self, result: Result, exc: Exception) -> None:
        self.metrics.skipped.labels("write_failed").inc()
        log.warning(
            "embedding event not written",
            extra={"fields": {"error": f"{type(exc).__name__}: {exc}"}},
        )

    async def _emit(self, result: Result, outcome: Outcome) -> None:
        m = self.metrics
        if outcome.cache_hits:
            m.sentences.labels("hit").inc(outcome.cache_hits)
        if outcome.encoded:
            m.sentences.labels("miss").inc(outcome.encoded)
        for metric, reason in outcome.skipped.items():
            m.score_skipped.labels(metric, reason).inc()
        if outcome.origin is None:
            m.skipped.labels("no_embeddings").inc()
            return
        if not outcome.scores:
            m.skipped.labels("no_scores").inc()
            return
        if await self._write_event(result, self._event(result, outcome)):
            m.scored.labels(outcome.origin).inc()

    def _event(self, result: Result, outcome: Outcome) -> ScoredEvent:
        detail = {"origin": outcome.origin, **outcome.detail}
        if outcome.skipped:
            detail["skipped"] = dict(outcome.skipped)
        return derived_event(
            result,
            "embedding",
            self.version,
            self._clock(),
            scores={k: round(v, 4) for k, v in outcome.scores.items()},
            flags=[],
            sampled=Sampling(selected=False, reasons=[]),
            detail=detail,
        )
