"""The judge as a pipeline stage: a bounded queue, N workers, never blocking the caller.

The pipeline calls :meth:`JudgeStage.offer` for every sampled trace *after* its
heuristic event is written, so the heuristic path (and the source's
acknowledgement) never waits for a judge. ``offer`` decides at once, in this
order:

1. same content judged before (cache) → queued to be written, ``True``, no cost;
2. breaker open → ``False``, ``skipped{reason="breaker_open"}``;
3. queue full → ``False``, ``skipped{reason="backpressure"}`` (the last
   ``priority_reserve`` share of the queue is kept for priority samples);
4. budget (rate or daily cap, see :mod:`.budget`) → ``False``, ``skipped{reason="budget"}``;
5. otherwise queued, ``True``.

Each worker judges one trace at a time (duplicates in flight wait for the first)
and writes a second event for the trace, ``type="judge"``, through the ``write``
callable given to :meth:`start`. A judge failure writes nothing and is counted
(``skipped{reason="failed"|"bad_output"|"breaker_open"}``); heuristics are
unaffected. :meth:`aclose` lets queued and in-flight work finish within
``shutdown_timeout_s`` and counts the rest as ``skipped{reason="shutdown"}``.

The judge event copies the heuristic event's labels, source and timestamp; its
``sampled`` is ``{selected: true, reasons: []}`` and ``feedback`` is null so that
sinks do not count sampling and feedback twice — the sample reasons are in
``detail.sample_reasons``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry

from ...errors import JudgeBadOutput, JudgeBreakerOpen, JudgeError
from ...events import Sampling, ScoredEvent
from ...stages import Result
from ..background import BackgroundStage, derived_event
from ..background import Write as Write  # re-exported: the router imports it from here
from .budget import Budget, is_priority
from .cache import LruCache, content_key
from .client import JudgeClient
from .metrics import JudgeMetrics
from .prompts import PromptSet
from .scorer import Judgement, JudgeScorer, Ledger, rebind_chunk_ids
from .settings import JudgeSettings

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Job:
    result: Result
    key: str
    reservation: float | None
    """The budget reservation (None for a job served from the cache)."""
    cached: Judgement | None = None
    fresh: bool = False
    """Judge anew: no cache lookup, no twin sharing, nothing cached (canaries)."""


class JudgeStage(BackgroundStage[_Job]):
    """Judges sampled traces in the background and writes ``type="judge"`` events."""

    def __init__(
        self,
        settings: JudgeSettings,
        registry: CollectorRegistry,
        *,
        client: JudgeClient | None = None,
        clock: Callable[[], float] = time.time,
        metrics: JudgeMetrics | None = None,
        prompts: PromptSet | None = None,
    ) -> None:
        """``metrics``: pass one shared :class:`JudgeMetrics` when several judges use one
        registry; by default the families are created on ``registry``."""
        self.settings = settings
        self.name = settings.name
        super().__init__(
            queue_size=settings.queue_size,
            shutdown_timeout_s=settings.shutdown_timeout_s,
            workers=[f"judge:{self.name}:{i}" for i in range(settings.concurrency)],
        )
        self.metrics = metrics if metrics is not None else JudgeMetrics(registry)
        self._own_client = client is None
        self.client = client if client is not None else JudgeClient(settings)
        if self.client.metrics is None:
            self.client.metrics = self.metrics
        self.scorer = JudgeScorer(settings, self.client, prompts=prompts)
        self.version: str = self.scorer.version
        self.budget = Budget(
            rate_per_minute=settings.rate_per_minute,
            daily_usd_cap=settings.daily_usd_cap,
            priority_reserve=settings.priority_reserve,
            clock=clock,
        )
        self.cache: LruCache[Judgement] = LruCache(settings.cache_size)
        self._clock = clock
        self._open_slots_floor = int(settings.queue_size * settings.priority_reserve)
        self._pending: dict[str, asyncio.Future[Judgement | None]] = {}
        self._fresh_ids = itertools.count()
        self.on_failed: Callable[[Result, str], None] | None = None
        """Called with a queued trace that got no judge event, and the skip reason."""
        self.metrics.bind(
            self.name,
            queue_depth=self._queue.qsize,
            breaker=lambda: float(self.client.breaker.state_code),
        )

    # ------------------------------------------------------------------ lifecycle

    async def aclose(self) -> None:
        """Stop taking work; let it finish within ``shutdown_timeout_s``; count the rest."""
        await super().aclose()
        if self._own_client:
            await self.client.aclose()

    def _drop(self, job: _Job) -> None:
        if job.reservation is not None:
            self.budget.settle(job.reservation, None)

    def _count_shutdown(self, n: int) -> None:
        self._skip("shutdown", n)
        log.warning(
            "judge stopped with work left",
            extra={"fields": {"judge": self.name, "abandoned": n}},
        )

    # ---------------------------------------------------------------------- offer

    def _skip(self, reason: str, n: int = 1) -> None:
        self.metrics.skipped.labels(self.name, reason).inc(n)

    def _failed(self, result: Result, reason: str) -> None:
        if self.on_failed is not None:
            try:
                self.on_failed(result, reason)
            except Exception:
                log.exception("judge on_failed hook failed", extra={"fields": {"judge": self.name}})

    async def room_for(self, result: Result) -> None:
        """Wait until :meth:`offer` would not refuse ``result`` for backpressure."""
        priority = is_priority(result.event.sampled.reasons)
        await self.wait_for_room(0 if priority else self._open_slots_floor)

    def offer(self, result: Result, *, fresh: bool = False) -> bool:
        """Queue a sampled trace for judging without blocking; False when it was skipped.

        ``fresh``: bypass the cache (canaries must reach the model every time).
        """
        if self._closing:
            self._skip("shutdown")
            return False
        priority = is_priority(result.event.sampled.reasons)
        q = self._queue
        room = q.maxsize - q.qsize()
        full = room <= 0 or (not priority and room <= self._open_slots_floor)
        key = f"fresh:{next(self._fresh_ids)}" if fresh else content_key(self.version, result.trace)
        hit = None if fresh else self.cache.get(key)
        if hit is not None:
            if room <= 0:
                self._skip("backpressure")
                return False
            self.metrics.cache_hits.labels(self.name).inc()
            q.put_nowait(_Job(result, key, None, hit))
            return True
        if self.client.breaker.refusing:  # also while the half-open probe is out: it
            self._skip("breaker_open")  # would only spend a rate token, then fail
            return False
        if full:
            self._skip("backpressure")
            return False
        reservation = self.budget.try_admit(priority)
        if reservation is None:
            self._skip("budget")
            return False
        q.put_nowait(_Job(result, key, reservation, fresh=fresh))
        return True

    # --------------------------------------------------------------------- workers

    def _run_failed(self, job: _Job, exc: Exception) -> None:
        self._skip("failed")  # a bug, or an error nobody translated: still no judge event
        self._failed(job.result, "failed")
        log.error("judge worker failed", exc_info=exc, extra={"fields": {"judge": self.name}})

    def _write_failed(self, result: Result, exc: Exception) -> None:
        self._skip("write_failed")
        self._failed(result, "write_failed")
        log.warning(
            "judge event not written",
            extra={"fields": {"judge": self.name, "error": f"{type(exc).__name__}: {exc}"}},
        )

    async def _run(self, job: _Job) -> None:
        judgement, cached = job.cached, job.cached is not None
        if judgement is None:
            judgement, cached = await self._judge(job)
            if judgement is None:
                return
        if await self._write_event(job.result, self._event(job.result, judgement, cached=cached)):
            self.metrics.judged.labels(self.name).inc()

    async def _judge(self, job: _Job) -> tuple[Judgement | None, bool]:
        """Judge a job (or reuse a twin's judgement); (None, False) when it failed."""
        reservation = job.reservation or 0.0
        hit = None if job.fresh else self.cache.get(job.key)
        twin = self._pending.get(job.key) if hit is None else None
        if twin is not None:
            hit = await asyncio.shield(twin)
        if hit is not None:
            self.budget.settle(reservation, None)
            self.metrics.cache_hits.labels(self.name).inc()
            return hit, True
        future: asyncio.Future[Judgement | None] = asyncio.get_running_loop().create_future()
        self._pending[job.key] = future
        ledger = Ledger()
        judgement: Judgement | None = None
        try:
            judgement = await self.scorer.judge(job.result.trace, ledger)
        except JudgeError as exc:
            reason = (
                "breaker_open"
                if isinstance(exc, JudgeBreakerOpen)
                else "bad_output"
                if isinstance(exc, JudgeBadOutput)
                else "failed"
            )
            self._skip(reason)
            self._failed(job.result, reason)
            log.warning(
                "trace not judged",
                extra={
                    "fields": {
                        "judge": self.name,
                        "trace_id": job.result.trace.trace_id,
                        "reason": reason,
                        "error": str(exc),
                    }
                },
            )
        finally:
            self._pending.pop(job.key, None)
            future.set_result(judgement)
            self.metrics.spent(
                self.name, ledger.prompt_tokens, ledger.completion_tokens, ledger.cost_usd
            )
            self.budget.settle(reservation, ledger.cost_usd if ledger.replies else None)
        if judgement is not None:
            if not job.fresh:
                self.cache.put(job.key, judgement)
            if judgement.downgraded:
                self.metrics.downgraded.labels(self.name).inc(judgement.downgraded)
        return judgement, False

    def _event(self, result: Result, judgement: Judgement, *, cached: bool) -> ScoredEvent:
        heuristic = result.event
        detail = dict(judgement.detail)
        if cached:
            detail.update(
                cached=True,
                tokens={"prompt": 0, "completion": 0},
                cost_usd=0.0,
                requests=0,
                latency_s=0.0,
            )
            rebind_chunk_ids(detail, result.trace)
        detail["sample_reasons"] = list(heuristic.sampled.reasons)
        return derived_event(
            result,
            "judge",
            self.version,
            self._clock(),
            scores=dict(judgement.scores),
            flags=list(judgement.flags),
            sampled=Sampling(selected=True, reasons=[]),
            detail=detail,
        )
