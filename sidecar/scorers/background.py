"""The lifecycle shared by the background scoring stages (judge, embeddings).

A :class:`BackgroundStage` owns a bounded queue of jobs and the worker tasks that
serve it. A subclass decides what is queued (its own ``offer``, which checks
``_closing`` and puts jobs on ``_queue``), what a job does (:meth:`~BackgroundStage._run`)
and how failures and shutdown are counted and logged (the ``_*`` hooks below).

:meth:`~BackgroundStage.aclose` lets queued and in-flight jobs finish within
``shutdown_timeout_s``, then cancels the workers, hands each job still queued to
:meth:`~BackgroundStage._drop` and reports how many were abandoned (queued plus
in flight) to :meth:`~BackgroundStage._count_shutdown`.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

from ..events import EventType, Sampling, ScoredEvent, make_event_id
from ..stages import Result

Write = Callable[[list[Result]], Awaitable[None]]
"""Where a stage's derived events go (the pipeline's sink queue)."""

JobT = TypeVar("JobT")


def derived_event(
    result: Result,
    type_: EventType,
    version: str,
    scored_at: float,
    *,
    scores: dict[str, float],
    flags: list[str],
    sampled: Sampling,
    detail: dict[str, Any],
) -> ScoredEvent:
    """A second event for ``result``'s trace, of type ``type_``, by scorer ``version``.

    It copies the heuristic event's labels, source and timestamp; ``feedback`` is null.
    """
    heuristic = result.event
    trace_id = result.trace.trace_id
    return ScoredEvent(
        event_id=make_event_id(trace_id, type_, version),
        trace_id=trace_id,
        type=type_,
        timestamp=heuristic.timestamp,
        scored_at=scored_at,
        scorer_version=version,
        source=heuristic.source,
        labels=heuristic.labels,
        scores=scores,
        flags=flags,
        sampled=sampled,
        feedback=None,
        detail=detail,
    )


class BackgroundStage(ABC, Generic[JobT]):
    """A bounded job queue served by named worker tasks, with graceful shutdown."""

    def __init__(
        self, *, queue_size: int, shutdown_timeout_s: float, workers: Sequence[str]
    ) -> None:
        """``workers``: one task name per worker started by :meth:`start`."""
        self._queue: asyncio.Queue[JobT] = asyncio.Queue(queue_size)
        self._shutdown_timeout_s = shutdown_timeout_s
        self._worker_names = tuple(workers)
        self._workers: list[asyncio.Task[None]] = []
        self._write: Write | None = None
        self._closing = False
        self._inflight = 0
        self._room = asyncio.Event()
        """Set whenever a worker takes a job (the queue has room again)."""

    async def start(self, write: Write) -> None:
        """Start the workers; derived events are handed to ``write``."""
        self._write = write
        self._workers = [asyncio.create_task(self._work(), name=n) for n in self._worker_names]

    async def aclose(self) -> None:
        """Stop taking work; let it finish within ``shutdown_timeout_s``; count the rest."""
        self._closing = True
        self._room.set()  # nobody waits for room in a closing stage
        if self._workers:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._shutdown_timeout_s):
                    await self._queue.join()
            abandoned = self._queue.qsize() + self._inflight
            for task in self._workers:
                task.cancel()
            await asyncio.gather(*self._workers, return_exceptions=True)
            self._workers = []
        else:
            abandoned = self._queue.qsize()
        while not self._queue.empty():
            self._drop(self._queue.get_nowait())
            self._queue.task_done()
        if abandoned:
            self._count_shutdown(abandoned)

    async def wait_for_room(self, reserve: int = 0) -> None:
        """Return once the queue has more than ``reserve`` free slots (or it is closing):
        an offer made then is not refused for backpressure. At once when ``reserve`` is the
        whole queue (it never has more room: the offer will be refused anyway)."""
        q = self._queue
        if reserve >= q.maxsize:
            return
        while q.maxsize - q.qsize() <= reserve and not self._closing and self._workers:
            self._room.clear()
            await self._room.wait()

    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            self._room.set()
            self._inflight += 1
            try:
                await self._run(job)
            except Exception as exc:
                self._run_failed(job, exc)
            finally:
                self._inflight -= 1
                self._queue.task_done()

    async def _write_event(self, result: Result, event: ScoredEvent) -> bool:
        """Write ``event`` derived from ``result``; False (after :meth:`_write_failed`) if not."""
        assert self._write is not None
        try:
            await self._write([Result(result.trace, event)])
        except Exception as exc:
            self._write_failed(result, exc)
            return False
        return True

    # ----------------------------------------------------------------------- hooks

    @abstractmethod
    async def _run(self, job: JobT) -> None:
        """Do one job (on a worker task)."""

    @abstractmethod
    def _run_failed(self, job: JobT, exc: Exception) -> None:
        """Account for a job whose :meth:`_run` raised."""

    @abstractmethod
    def _write_failed(self, result: Result, exc: Exception) -> None:
        """Account for a derived event that ``write`` refused."""

    @abstractmethod
    def _count_shutdown(self, n: int) -> None:
        """Account for ``n`` jobs abandoned by :meth:`aclose`."""

    def _drop(self, job: JobT) -> None:
        """Release what a job still queued at shutdown holds (nothing by default)."""
