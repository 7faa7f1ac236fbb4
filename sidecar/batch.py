"""Finite runs of the same pipeline: ``score`` (files → report) and ``replay`` (a topic range).

``score`` writes ``DIR/events.jsonl`` (scored events), ``DIR/report.md``,
``DIR/report.csv`` and, when any input is invalid, ``DIR/dead-letter.jsonl``.
``replay`` re-scores a time or offset range of a Kafka topic into an events
sink (file or topic) and optionally an OpenMetrics file for
``promtool tsdb create-blocks-from openmetrics``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry

from .app import build_dead_letter_sink, build_engine, build_event_sink, build_pipeline
from .config import FileSpec, Settings, SinkSpec
from .errors import SidecarError, Terminated
from .pipeline import Pipeline
from .progress import Progress
from .report import ReportBuilder
from .scorers.heuristics.registry import METRICS
from .sinks.jsonl import JsonlDeadLetterSink, JsonlEventSink
from .sinks.openmetrics import OpenMetricsBackfillSink
from .sources.file import FileSource
from .sources.replay import KafkaReplaySource, ReplayRange
from .stages import DeadLetter, DeadLetterSink, Result, Sink
from .summary import summarize


class ReportSink:
    """Feeds every scored result to the report and advances the progress line."""

    def __init__(self, builder: ReportBuilder, progress: Progress) -> None:
        self.name = "report"
        self._builder = builder
        self._progress = progress

    async def start(self) -> None:
        """Nothing to open: the builder opened its files."""

    async def write(self, results: Sequence[Result]) -> None:
        """Heuristic results are the report's rows; later ones (judge, …) join its aggregates."""
        n = 0
        for r in results:
            if r.event.type == "heuristic":
                self._builder.add(r.trace, r.event)
                n += 1
            else:
                self._builder.add_later(r.event)
        self._progress.advance(n)

    async def flush(self) -> None:
        """The report is written on close."""

    async def aclose(self) -> None:
        """The report is written on close."""


class ObservedDeadLetters:
    """Writes dead letters to their sink, then hands the written ones to ``observe`` (the
    report's counts in ``score``; ``traces_total{outcome="invalid"}`` at the records' own
    times in a replay's OpenMetrics backfill). A letter not written is not observed."""

    def __init__(
        self, inner: DeadLetterSink, observe: Callable[[Sequence[DeadLetter]], None]
    ) -> None:
        self.name = inner.name
        self._inner = inner
        self._observe = observe

    async def start(self) -> None:
        """Start the inner sink."""
        await self._inner.start()

    async def write(self, letters: Sequence[DeadLetter]) -> None:
        """Write, then observe."""
        await self._inner.write(letters)
        self._observe(letters)

    async def flush(self) -> None:
        """Flush the inner sink."""
        await self._inner.flush()

    async def aclose(self) -> None:
        """Close the inner sink."""
        await self._inner.aclose()


def _count_dead_letters(
    builder: ReportBuilder, progress: Progress, letters: Sequence[DeadLetter]
) -> None:
    for letter in letters:
        builder.add_dead_letter(letter.reason)
    progress.advance(len(letters))


def _count_lines(files: Sequence[Path]) -> int:
    total = 0
    for path in files:
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                total += block.count(b"\n")
    return total


async def score_files(settings: Settings, files: Sequence[Path], out: Path) -> str:
    """Score ``files`` into ``out``; return the terminal summary."""
    settings = finite(settings)
    builder = ReportBuilder(out, score_names=list(METRICS))
    progress = Progress(_count_lines(files), label="scoring ")
    sources = [
        FileSource(FileSpec(f, str(f)), batch_size=settings.pipeline.batch_size) for f in files
    ]
    pipeline = build_pipeline(
        settings,
        CollectorRegistry(),
        sources=sources,
        sinks=[
            JsonlEventSink(FileSpec(out / "events.jsonl", "events"), mode="truncate"),
            ReportSink(builder, progress),
        ],
        dead_letters=ObservedDeadLetters(
            JsonlDeadLetterSink(FileSpec(out / "dead-letter.jsonl", "dead-letter")),
            functools.partial(_count_dead_letters, builder, progress),
        ),
    )
    await run_to_end(pipeline, progress, "scoring")
    summary = builder.close()
    return summary.text() + f"\nwrote {out / 'events.jsonl'}, {summary.md_path}, {summary.csv_path}"


@dataclass(frozen=True, slots=True)
class ReplayRequest:
    """What ``rag-sidecar replay`` was asked to do."""

    bootstrap: tuple[str, ...]
    topic: str
    range: ReplayRange
    events: SinkSpec | None
    dead_letter: SinkSpec
    openmetrics: Path | None = None
    step_s: float = 60.0
    backfill_id: str | None = None
    stall_s: float = 120.0


async def replay_topic(settings: Settings, req: ReplayRequest) -> str:
    """Run a replay to the end of its range; return the terminal summary.

    Raises :class:`SidecarError` when the range could not be read whole (the
    OpenMetrics file then goes to ``FILE.partial``) and :class:`Terminated` on SIGTERM.
    """
    settings = finite(settings)
    registry = CollectorRegistry()
    engine = build_engine(settings)
    source = KafkaReplaySource(
        req.bootstrap, req.topic, req.range, settings.kafka, stall_s=req.stall_s
    )
    total = await source.prepare()
    progress = Progress(total, label="replaying ")
    sinks: list[Sink] = [ProgressSink(progress)]
    om: OpenMetricsBackfillSink | None = None
    try:
        if req.events is not None:
            sinks.append(build_event_sink(req.events, settings))
        if req.openmetrics is not None:
            om = OpenMetricsBackfillSink(
                req.openmetrics,
                step_s=req.step_s,
                max_label_values=settings.http.max_label_values,
                metric_kinds={k: m.kind for k, m in METRICS.items()},
                extra_labels={"backfill": req.backfill_id or engine.version},
            )
            sinks.append(om)
        dead_letters: DeadLetterSink = build_dead_letter_sink(req.dead_letter, settings)
        if om is not None:
            dead_letters = ObservedDeadLetters(dead_letters, om.dead_letters)
        pipeline = build_pipeline(
            settings, registry, sources=[source], sinks=sinks, dead_letters=dead_letters
        )
    except BaseException:
        await source.aclose()
        raise
    await run_to_end(pipeline, progress, "replay", on_drained=om.finish if om else None)
    lines = [summarize(registry).splitlines()[0].replace("scored", "replayed", 1)]
    lines.append(f"scorer version {engine.version}; read {source.read} records")
    if om is not None:
        lines.append(
            f"wrote {req.openmetrics} (late {om.late}, skipped {om.skipped}); load it with "
            f"promtool tsdb create-blocks-from openmetrics {req.openmetrics} DATA_DIR"
        )
    return "\n".join(lines)


async def run_to_end(
    pipeline: Pipeline,
    progress: Progress,
    what: str,
    *,
    on_drained: Callable[[], None] | None = None,
) -> None:
    """Start ``pipeline``, wait until its input is drained, close it; SIGTERM-safe.

    ``on_drained`` runs once everything was written, before the sinks close. Raises
    :class:`Terminated` on SIGTERM and :class:`SidecarError` when the run failed.
    """
    with terminate_on_sigterm() as term:
        try:
            try:
                await pipeline.start()
                if await pipeline.drained() and on_drained is not None:
                    on_drained()
            finally:
                term.closing = True
                await pipeline.aclose()
                progress.close()
        except asyncio.CancelledError:
            if term.hit:
                raise Terminated(f"{what} stopped by SIGTERM; output incomplete") from None
            raise
    if pipeline.failure is not None:
        raise SidecarError(f"{what} failed: {pipeline.failure}")


@dataclass(slots=True)
class Termination:
    """What :func:`terminate_on_sigterm` saw: a SIGTERM (``hit``); set ``closing`` once
    outputs are being finished, so that a SIGTERM then no longer interrupts them."""

    hit: bool = False
    closing: bool = False


@contextlib.contextmanager
def terminate_on_sigterm() -> Iterator[Termination]:
    """Cancel the current task on SIGTERM (as asyncio does on SIGINT), so ``finally``
    blocks close files and sinks."""
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    state = Termination()

    def on_term() -> None:
        if state.hit or state.closing:
            return  # already stopping: let the outputs be finished
        state.hit = True
        if task is not None:
            task.cancel()

    try:
        loop.add_signal_handler(signal.SIGTERM, on_term)
    except (NotImplementedError, RuntimeError):  # not the main thread, or no signals here
        yield state
        return
    try:
        yield state
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


def finite(settings: Settings) -> Settings:
    """``settings`` for a run that must read all of its input: the pipeline, the judge and
    the embeddings tier block when full (dropping belongs to a live sidecar that may shed
    load; a backfill with ``--judge-rate 1`` must judge every trace, within the budget)."""
    blocking = {"overflow": "block", "background_overflow": "block"}
    return settings.model_copy(update={"pipeline": settings.pipeline.model_copy(update=blocking)})


class ProgressSink:
    """Advances a progress line as results are written."""

    def __init__(self, progress: Progress) -> None:
        self.name = "progress"
        self._progress = progress

    async def start(self) -> None:
        """Nothing to open."""

    async def write(self, results: Sequence[Result]) -> None:
        """Count the batch's traces (later results about a trace are not counted again)."""
        self._progress.advance(sum(1 for r in results if r.event.type == "heuristic"))

    async def flush(self) -> None:
        """Nothing buffered."""

    async def aclose(self) -> None:
        """Nothing to release."""
