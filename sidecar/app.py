"""Assemble a running sidecar from validated settings.

:func:`build_engine` and :func:`build_pipeline` turn :class:`~sidecar.config.Settings`
into stages; :class:`Sidecar` adds the HTTP server (/metrics, /healthz, /readyz)
and runs until stopped, or until finite sources are drained.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence

from prometheus_client import CollectorRegistry, Gauge

from . import __version__
from .config import KafkaSpec, OtlpSpec, Settings, SinkSpec
from .drift.sink import DriftSink
from .events import ScoredEvent
from .feedback import FeedbackJoiner
from .http import HttpServer, add_health_routes, add_metrics_routes
from .pipeline import Pipeline
from .sampling import Sampler
from .scorers.embeddings import build_embeddings
from .scorers.engine import ScoringEngine
from .scorers.heuristics import HeuristicSuite
from .scorers.heuristics.registry import METRICS
from .scorers.judge import build_judge
from .sinks.jsonl import JsonlDeadLetterSink, JsonlEventSink
from .sinks.kafka import KafkaDeadLetterSink, KafkaEventSink
from .sinks.labelstudio.sink import ReviewSink
from .sinks.otlp import OtlpScoreSink, make_exporter
from .sinks.prometheus import PrometheusSink
from .sources.file import FileSource
from .sources.kafka import KafkaSource
from .sources.otlp.source import OtlpSource
from .stages import DeadLetterSink, Result, Sink, Source
from .trace import Trace

log = logging.getLogger(__name__)


def build_engine(settings: Settings) -> ScoringEngine:
    """The scoring hot path configured from settings."""
    return ScoringEngine(
        HeuristicSuite(settings.heuristics),
        Sampler(settings.sampling),
        max_record_bytes=settings.pipeline.max_record_bytes,
    )


def build_sources(settings: Settings, registry: CollectorRegistry) -> list[Source]:
    """One source per configured URI."""
    sources: list[Source] = []
    for spec in settings.source_specs():
        if isinstance(spec, KafkaSpec):
            sources.append(
                KafkaSource(
                    spec,
                    settings.kafka,
                    registry,
                    drain_timeout_s=settings.pipeline.drain_timeout_s,
                )
            )
        elif isinstance(spec, OtlpSpec):
            sources.append(
                OtlpSource(
                    spec,
                    settings.otlp,
                    registry,
                    drain_timeout_s=settings.pipeline.drain_timeout_s,
                )
            )
        else:
            sources.append(
                FileSource(spec, batch_size=settings.pipeline.batch_size, follow=settings.follow)
            )
    return sources


def build_event_sink(spec: SinkSpec, settings: Settings) -> Sink:
    """The scored-events sink for a URI."""
    if isinstance(spec, KafkaSpec):
        return KafkaEventSink(spec, settings.kafka)
    return JsonlEventSink(spec)


def build_dead_letter_sink(spec: SinkSpec, settings: Settings) -> DeadLetterSink:
    """The dead-letter sink for a URI."""
    if isinstance(spec, KafkaSpec):
        return KafkaDeadLetterSink(spec, settings.kafka)
    return JsonlDeadLetterSink(spec)


def build_pipeline(
    settings: Settings,
    registry: CollectorRegistry,
    *,
    sources: Sequence[Source] | None = None,
    sinks: Sequence[Sink] | None = None,
    dead_letters: DeadLetterSink | None = None,
) -> Pipeline:
    """The pipeline from settings; callers may pass stages of their own instead."""
    limiter = None
    if sinks is None:
        prometheus = PrometheusSink(
            registry,
            max_label_values=settings.http.max_label_values,
            metric_kinds={name: spec.kind for name, spec in METRICS.items()},
            label_ttl_s=settings.http.label_ttl_s,
        )
        limiter = prometheus.limit
        event_sinks: list[Sink] = []
        events = settings.events_spec()
        if events is not None:
            event_sinks.append(build_event_sink(events, settings))
        built: list[Sink] = [prometheus, *event_sinks]
        if settings.drift.enabled:
            built.append(
                DriftSink(
                    settings.drift,
                    registry,
                    emit_events=_event_writer(event_sinks),
                    limiter=prometheus.limit,
                )
            )
        if settings.scores_otlp is not None:
            built.append(OtlpScoreSink(make_exporter(settings.scores_otlp), registry))
        if settings.review is not None:
            built.append(ReviewSink(settings.review, kafka=settings.kafka, registry=registry))
        sinks = built
    judge = build_judge(settings.judge, registry, max_apps=settings.http.max_label_values)
    feedback = None
    if settings.feedback.enabled:
        feedback = FeedbackJoiner(
            settings.feedback,
            registry,
            keep_traces=judge is not None,
            limiter=limiter,
            max_apps=settings.http.max_label_values,
            label_ttl_s=settings.http.label_ttl_s,
        )
    return Pipeline(
        sources=build_sources(settings, registry) if sources is None else sources,
        sinks=sinks,
        dead_letters=dead_letters or build_dead_letter_sink(settings.dead_letter_spec(), settings),
        engine=build_engine(settings),
        registry=registry,
        settings=settings.pipeline,
        judge=judge,
        feedback=feedback,
        embeddings=build_embeddings(settings.embeddings, registry),
    )


def _event_writer(sinks: Sequence[Sink]) -> Callable[[list[ScoredEvent]], Awaitable[None]]:
    """Drift events go to the events sinks only (never to metrics, where they'd count as scores)."""

    async def write(events: list[ScoredEvent]) -> None:
        results = [Result(Trace(trace_id=e.trace_id, query="", answer=""), e) for e in events]
        await asyncio.gather(*(s.write(results) for s in sinks))

    return write


class Sidecar:
    """The long-running service: pipeline plus HTTP endpoints."""

    def __init__(self, settings: Settings, registry: CollectorRegistry | None = None) -> None:
        self.settings = settings
        self.registry = registry or CollectorRegistry()
        info = Gauge(
            "rag_sidecar_build_info",
            "Version of the running sidecar (value is always 1).",
            ("version", "scorer_version"),
            registry=self.registry,
        )
        self.pipeline = build_pipeline(settings, self.registry)
        info.labels(__version__, self.pipeline.engine.version).set(1)
        self.http = HttpServer(settings.http.host, settings.http.port)
        add_metrics_routes(self.http, self.registry)
        add_health_routes(self.http, ready=lambda: self.pipeline.ready, health=self.pipeline.health)

    async def run(self, *, exit_when_done: bool = False, stop: asyncio.Event | None = None) -> int:
        """Run until SIGTERM/SIGINT (or ``stop``), or until drained with ``exit_when_done``.

        Returns the process exit code: 0 after a clean drain, 1 if the pipeline failed.
        """
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        await self.http.start()
        log.info("http listening", extra={"fields": {"port": self.http.bound_port}})
        try:
            await self.pipeline.start()
            # Everything allocated so far lives as long as the process: keep it out of the
            # cyclic GC's way, and collect young objects less often (high allocation rate).
            gc.freeze()
            gc.set_threshold(20_000, 20, 50)
            stopped = asyncio.ensure_future(stop.wait())
            drained = asyncio.ensure_future(self.pipeline.drained())
            try:
                await asyncio.wait({stopped, drained}, return_when=asyncio.FIRST_COMPLETED)
                if drained.done() and drained.result():
                    log.info("sources drained", extra={"fields": {}})
                    self.on_drained()
                    if not exit_when_done:
                        failed = asyncio.ensure_future(self.pipeline.failed.wait())
                        await asyncio.wait({stopped, failed}, return_when=asyncio.FIRST_COMPLETED)
                        failed.cancel()
            finally:
                stopped.cancel()
                drained.cancel()
        finally:
            await self.pipeline.aclose()
            await self.http.aclose()
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)
        return 1 if self.pipeline.failure is not None else 0

    def on_drained(self) -> None:
        """Hook called once finite sources are drained (the CLI prints a summary)."""
