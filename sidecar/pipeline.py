"""The only place where stages are wired together.

::

    sources ──emit──▶ [score queue] ──▶ scoring ──▶ [write queue] ──▶ sinks ──▶ Batch.done

* Both queues are bounded (``pipeline.queue_size`` batches). At the score queue
  the overflow policy applies: ``block`` makes ``emit`` wait (backpressure to
  the source), ``drop`` discards the batch, counts it and reports it undone.
  The write queue always blocks: scored results are never dropped.
* A batch is acknowledged (``Batch.done(True)``) only after every sink and the
  dead-letter sink have written it: at-least-once. The writer takes every batch
  scored meanwhile in one round (one wait for a broker's acks, not one per batch).
* Sink errors: :class:`~sidecar.errors.RetryableError` is retried with capped
  exponential backoff (honouring ``retry_after``); a
  :class:`~sidecar.errors.PermanentError` fails the pipeline, nothing further is
  acknowledged and the process exits non-zero so it restarts from the last ack.
* Lifecycle: sinks start first and sources last; shutdown stops sources, drains
  the queues (bounded by ``drain_timeout_s``), then flushes and closes sinks.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry

from .config import PipelineSettings
from .errors import PermanentError, RetryableError
from .feedback import FeedbackJoiner
from .pipeline_state import PipelineMetrics, QueueCollector, StageState
from .scorers.embeddings import EmbeddingStage
from .scorers.engine import ScoringEngine
from .scorers.judge import JudgeRouter, JudgeStage
from .stages import Batch, DeadLetter, DeadLetterSink, Record, Result, Sink, Source

log = logging.getLogger(__name__)

_BACKOFF_START = 0.1
_BACKOFF_MAX = 10.0


@dataclass(slots=True)
class _Scored:
    batch: Batch
    results: list[Result]
    letters: list[DeadLetter]
    extra: list[Result] = field(default_factory=list)
    """Feedback events written with the batch (not counted as scored traces)."""
    late: list[str] = field(default_factory=list)
    """Traces with a late thumbs-down, for the judge once the batch is written."""
    n_feedback: int = 0


def _scoring_error(record: Record, source: str, exc: Exception) -> DeadLetter:
    """The dead letter of a record a scorer raised on (logged with its traceback), so that a
    poison record cannot stop the pipeline (a Kafka source would crash-loop on it)."""
    detail = f"{type(exc).__name__}: {exc}"[:500]
    log.error(
        "scoring failed; record dead-lettered",
        extra={"fields": {"origin": record.origin, "error": detail}},
        exc_info=exc,
    )
    return DeadLetter.of(record, source, "scoring_error", detail)


class Pipeline:
    """Runs sources → scoring → sinks with bounded queues and ordered lifecycle."""

    def __init__(
        self,
        *,
        sources: Sequence[Source],
        sinks: Sequence[Sink],
        dead_letters: DeadLetterSink,
        engine: ScoringEngine,
        registry: CollectorRegistry,
        settings: PipelineSettings,
        judge: JudgeStage | JudgeRouter | None = None,
        feedback: FeedbackJoiner | None = None,
        embeddings: EmbeddingStage | None = None,
    ) -> None:
        self.sources = list(sources)
        self.judge = judge
        self.embeddings = embeddings
        self.feedback = feedback
        engine.accept_feedback = feedback is not None
        self.sinks = list(sinks)
        self.dead_letters = dead_letters
        self.engine = engine
        self.settings = settings
        self.metrics = PipelineMetrics(registry)
        self._score_q: asyncio.Queue[Batch] = asyncio.Queue(settings.queue_size)
        self._write_q: asyncio.Queue[_Scored] = asyncio.Queue(settings.queue_size)
        self.stages = [StageState("score", self._score_q), StageState("write", self._write_q)]
        registry.register(QueueCollector(self.stages))
        self._tasks: list[asyncio.Task[None]] = []
        self._started_sinks: list[Sink | DeadLetterSink] = []
        self.ready = False
        self.failed = asyncio.Event()
        self.failure: BaseException | None = None
        self._closing = False

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start sinks, then the internal stages, then sources."""
        stages: list[Sink | DeadLetterSink] = [*self.sinks, self.dead_letters]
        for sink in stages:
            await sink.start()
            self._started_sinks.append(sink)
        if self.judge is not None:
            await self.judge.start(self._write_judged)
        if self.feedback is not None:
            await self.feedback.start(self._write_judged)
        if self.embeddings is not None:
            await self.embeddings.start(self._write_judged)
        self._tasks = [
            asyncio.create_task(self._score_loop(), name="stage:score"),
            asyncio.create_task(self._write_loop(), name="stage:write"),
        ]
        for task in self._tasks:
            task.add_done_callback(self._on_task_done)
        for source in self.sources:
            # Exported at 0 from the start, so "no trace scored" is a series an alert can read.
            self.metrics.traces.labels(source.name, "scored")
            await source.start(self._emit)
        self.ready = True
        log.info(
            "pipeline started",
            extra={
                "fields": {
                    "sources": [s.name for s in self.sources],
                    "sinks": [s.name for s in self.sinks],
                    "scorer_version": self.engine.version,
                }
            },
        )

    async def drained(self) -> bool:
        """Wait until every source is exhausted and its batches written, or the pipeline fails.

        Returns True when drained, False when the pipeline failed first (or a source's
        ``drained()`` raised: that becomes the pipeline's failure).
        """
        drained: asyncio.Future[Any] = asyncio.ensure_future(
            asyncio.gather(*(s.drained() for s in self.sources))
        )
        failed: asyncio.Future[Any] = asyncio.ensure_future(self.failed.wait())
        try:
            await asyncio.wait({drained, failed}, return_when=asyncio.FIRST_COMPLETED)
            if drained.done() and (exc := drained.exception()) is not None:
                self._fail(exc)  # a finite source that could not finish its input
        finally:
            drained.cancel()
            failed.cancel()
            await asyncio.gather(drained, failed, return_exceptions=True)
        return self.failure is None

    async def aclose(self) -> None:
        """Stop sources, drain queues within the drain timeout, close sinks."""
        self._closing = True
        self.ready = False
        started = time.monotonic()
        for source in reversed(self.sources):
            await source.aclose()  # a source may spend part of the drain time handing over
        if self.failure is None:
            left = self.settings.drain_timeout_s - (time.monotonic() - started)
            try:
                async with asyncio.timeout(max(left, 0.1)):  # one budget for both waits
                    await self._score_q.join()
                    await self._write_q.join()
            except TimeoutError:
                log.warning(
                    "drain timed out; unwritten batches stay unacknowledged",
                    extra={"fields": {"pending": self._score_q.qsize() + self._write_q.qsize()}},
                )
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)  # failures already recorded
        if self.feedback is not None:
            await self.feedback.aclose()  # what still waits is written unjoined
        if self.embeddings is not None:
            await self.embeddings.aclose()  # embedding events still need open sinks
        if self.judge is not None:
            await self.judge.aclose()  # judge events still need open sinks
        for sink in reversed(self._started_sinks):
            try:
                await sink.aclose()
            except Exception as exc:  # its last writes may be lost: the run did not succeed
                log.exception("sink close failed", extra={"fields": {"sink": sink.name}})
                if self.failure is None:
                    self.failure = exc

    def _on_task_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        if self.failure is None:
            self.failure = exc
            log.error(
                "pipeline failed",
                extra={"fields": {"error": f"{type(exc).__name__}: {exc}"}},
                exc_info=None if isinstance(exc, PermanentError) else exc,
            )
        self.ready = False
        self.failed.set()
        # Nothing queued will be written now: tell the sources, so none waits for it.
        for queue in (self._score_q, self._write_q):
            while not queue.empty():
                item = queue.get_nowait()
                (item if isinstance(item, Batch) else item.batch).done(False)
                queue.task_done()

    # ---------------------------------------------------------------------- health

    def health(self) -> tuple[bool, dict[str, Any]]:
        """(healthy, details): unhealthy when failed or a stage is stalled."""
        now = time.monotonic()
        stalled = {
            st.name: round(st.stalled_for(now), 1)
            for st in self.stages
            if st.stalled_for(now) > self.settings.stall_timeout_s
        }
        ok = self.failure is None and not stalled
        detail: dict[str, Any] = {
            "queues": {st.name: st.queue.qsize() for st in self.stages},
        }
        if stalled:
            detail["stalled"] = stalled
        if self.failure is not None:
            detail["failure"] = f"{type(self.failure).__name__}: {self.failure}"
        return ok, detail

    # ---------------------------------------------------------------------- stages

    async def _emit(self, batch: Batch) -> None:
        if self.failure is not None:
            batch.done(False)
            return
        if self.settings.overflow == "drop" and self._score_q.full():
            n = len(batch.records)
            self.metrics.dropped.labels("score").inc(n)
            self.metrics.traces.labels(batch.source, "dropped").inc(n)
            batch.done(False)
            return
        await self._score_q.put(batch)

    async def _score_loop(self) -> None:
        state = self.stages[0]
        process = self.engine.process
        fbj = self.feedback
        while True:
            batch = await self._score_q.get()
            state.busy_since = time.monotonic()
            try:
                results: list[Result] = []
                letters: list[DeadLetter] = []
                source = batch.source
                n_feedback = 0
                for record in batch.records:
                    try:
                        out = process(record, source)
                    except Exception as exc:  # a scorer bug: one record, not the pipeline
                        out = _scoring_error(record, source, exc)
                    if isinstance(out, Result):
                        results.append(out)
                        if fbj is not None:
                            fbj.scored(out, record.value)
                    elif isinstance(out, DeadLetter):
                        letters.append(out)
                    elif fbj is not None:
                        fbj.feedback(out, source, record.arrival)
                        n_feedback += 1
                scored = _Scored(batch, results, letters, n_feedback=n_feedback)
                if fbj is not None:
                    scored.extra, scored.late = fbj.take()
                await asyncio.sleep(0)  # let the writer and the sources run between batches
                await self._write_q.put(scored)
            except BaseException:
                batch.done(False)
                raise
            finally:
                state.busy_since = None
                state.last_progress = time.monotonic()
                self._score_q.task_done()

    async def _write_loop(self) -> None:
        state = self.stages[1]
        queue = self._write_q
        while True:
            items = [await queue.get()]
            while not queue.empty():
                items.append(queue.get_nowait())
            state.busy_since = time.monotonic()
            try:
                await self._write_items(items)
            finally:
                state.busy_since = None
                state.last_progress = time.monotonic()
                for _ in items:
                    queue.task_done()

    async def _write_items(self, items: list[_Scored]) -> None:
        """Write scored batches to every sink, then acknowledge each (in order)."""
        m = self.metrics
        done = 0
        try:
            results = [r for item in items for r in (*item.results, *item.extra)]
            letters = [d for item in items for d in item.letters]
            writes = [
                self._retrying(s.name, functools.partial(s.write, results)) for s in self.sinks
            ]
            if letters:
                dlq = self.dead_letters
                writes.append(
                    self._retrying(f"dead_letter:{dlq.name}", functools.partial(dlq.write, letters))
                )
            tasks = [asyncio.ensure_future(w) for w in writes]
            try:
                await asyncio.gather(*tasks)
            except BaseException:
                for task in tasks:  # a permanent failure stops the other sinks' retries too
                    task.cancel()
                raise
            wait = self.settings.background_overflow == "block"
            for item in items:
                results = item.results + item.extra if item.extra else item.results
                source = item.batch.source
                if item.results:
                    m.traces.labels(source, "scored").inc(len(item.results))
                if item.n_feedback:
                    m.traces.labels(source, "feedback").inc(item.n_feedback)
                if item.letters:
                    m.traces.labels(source, "invalid").inc(len(item.letters))
                    for letter in item.letters:
                        m.dead_letters.labels(letter.reason).inc()
                if item.batch.records:
                    m.latency.observe(time.time() - item.batch.records[0].arrival)
                if self.embeddings is not None:
                    for r in item.results:
                        if wait:
                            await self.embeddings.room_for(r)
                        self.embeddings.offer(r)
                if self.judge is not None:
                    offer, fbj = self.judge.offer, self.feedback
                    for r in results:
                        if not r.event.sampled.selected:
                            continue
                        if wait:
                            await self.judge.room_for(r)
                        if not offer(r) and fbj is not None:
                            fbj.refused(r.event.trace_id)
                    if fbj is not None and item.late:
                        fbj.offer_late(item.late, offer)
                item.batch.done(True)  # once offered: drained() never while samples wait
                done += 1
        except BaseException:
            for item in items[done:]:
                item.batch.done(False)
            raise

    async def _write_judged(self, results: list[Result]) -> None:
        """Judge, embedding and given-up feedback events go to every sink, with the same
        retries (no source acknowledgement)."""
        await asyncio.gather(
            *(self._retrying(s.name, functools.partial(s.write, results)) for s in self.sinks)
        )
        if self.feedback is not None:
            self.feedback.judged(results)

    async def _retrying(self, name: str, write: Callable[[], Awaitable[None]]) -> None:
        """Run a sink write, retrying retryable errors with capped exponential backoff."""
        delay = _BACKOFF_START
        while True:
            try:
                await write()
                return
            except RetryableError as exc:
                self.metrics.sink_errors.labels(name, "retryable").inc()
                wait = min(exc.retry_after if exc.retry_after is not None else delay, _BACKOFF_MAX)
                log.warning(
                    "sink write failed; retrying",
                    extra={"fields": {"sink": name, "error": str(exc), "retry_in_s": wait}},
                )
                await asyncio.sleep(wait)
                delay = min(delay * 2, _BACKOFF_MAX)
            except PermanentError:
                self.metrics.sink_errors.labels(name, "permanent").inc()
                raise
