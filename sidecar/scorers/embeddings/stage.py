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
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from prometheus_client import CollectorRegistry

from ...events import Sampling, ScoredEvent, make_event_id
from ...sampling import hash_unit
from ...stages import Result
from ...trace import Trace
from .metrics import EmbeddingMetrics
from .settings import EmbeddingsSettings

log = logging.getLogger(__name__)

Write = Callable[[list[Result]], Awaitable[None]]


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


class EmbeddingStage:
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
        self.settings = settings
        self.version = version
        self.metrics = EmbeddingMetrics(registry)
        self._score = score
        self._clock = clock
        self._queue: asyncio.Queue[Result] = asyncio.Queue(settings.queue_size)
        self._worker: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._write: Write | None = None
        self._closing = False
        self._busy = False
        self.metrics.bind(self._queue.qsize, settings.queue_size)

    def wants(self, trace_id: str) -> bool:
        """Whether a trace is in the embeddings sample (deterministic, like the judge's)."""
        rate = self.settings.rate
        return rate > 0.0 and (rate >= 1.0 or hash_unit(trace_id, self.settings.salt) < rate)

    # ------------------------------------------------------------------ lifecycle

    async def start(self, write: Write) -> None:
        """Start the worker; embedding events are handed to ``write``."""
        self._write = write
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embeddings")
        self._worker = asyncio.create_task(self._work(), name="embeddings")

    async def aclose(self) -> None:
        """Stop taking work; let it finish within ``shutdown_timeout_s``; count the rest."""
        self._closing = True
        if self._worker is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.shutdown_timeout_s):
                    await self._queue.join()
            abandoned = self._queue.qsize() + int(self._busy)
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
            self._worker = None
        else:
            abandoned = self._queue.qsize()
        while not self._queue.empty():
            self._queue.get_nowait()
            self._queue.task_done()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        if abandoned:
            self.metrics.skipped.labels("shutdown").inc(abandoned)
            log.warning("embeddings stopped with work left", extra={"fields": {"n": abandoned}})

    # ---------------------------------------------------------------------- offer

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

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            result = await self._queue.get()
            self._busy = True
            try:
                t0 = time.perf_counter()
                outcome = await loop.run_in_executor(self._executor, self._score, result.trace)
                self.metrics.seconds.observe(time.perf_counter() - t0)
                await self._emit(result, outcome)
            except Exception as exc:
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
            finally:
                self._busy = False
                self._queue.task_done()

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
        event = self._event(result, outcome)
        assert self._write is not None
        try:
            await self._write([Result(result.trace, event)])
        except Exception as exc:
            m.skipped.labels("write_failed").inc()
            log.warning(
                "embedding event not written",
                extra={"fields": {"error": f"{type(exc).__name__}: {exc}"}},
            )
            return
        m.scored.labels(outcome.origin).inc()

    def _event(self, result: Result, outcome: Outcome) -> ScoredEvent:
        heuristic = result.event
        trace_id = heuristic.trace_id
        detail = {"origin": outcome.origin, **outcome.detail}
        if outcome.skipped:
            detail["skipped"] = dict(outcome.skipped)
        return ScoredEvent(
            event_id=make_event_id(trace_id, "embedding", self.version),
            trace_id=trace_id,
            type="embedding",
            timestamp=heuristic.timestamp,
            scored_at=self._clock(),
            scorer_version=self.version,
            source=heuristic.source,
            labels=heuristic.labels,
            scores={k: round(v, 4) for k, v in outcome.scores.items()},
            flags=[],
            sampled=Sampling(selected=False, reasons=[]),
            feedback=None,
            detail=detail,
        )
