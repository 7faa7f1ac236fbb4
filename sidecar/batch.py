"""``rag-sidecar score``: the same pipeline over files, with a report at the end.

Writes ``DIR/events.jsonl`` (scored events), ``DIR/report.md``,
``DIR/report.csv`` and, when any input is invalid, ``DIR/dead-letter.jsonl``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from prometheus_client import CollectorRegistry

from .app import build_pipeline
from .config import FileSpec, Settings
from .errors import SidecarError
from .progress import Progress
from .report import ReportBuilder
from .scorers.heuristics.registry import METRICS
from .sinks.jsonl import JsonlDeadLetterSink, JsonlEventSink
from .sources.file import FileSource
from .stages import DeadLetter, Result


class ReportSink:
    """Feeds every scored result to the report and advances the progress line."""

    def __init__(self, builder: ReportBuilder, progress: Progress) -> None:
        self.name = "report"
        self._builder = builder
        self._progress = progress

    async def start(self) -> None:
        """Nothing to open: the builder opened its files."""

    async def write(self, results: Sequence[Result]) -> None:
        """Add results to the report."""
        for r in results:
            self._builder.add(r.trace, r.event)
        self._progress.advance(len(results))

    async def flush(self) -> None:
        """The report is written on close."""

    async def aclose(self) -> None:
        """The report is written on close."""


class CountingDeadLetters:
    """Writes dead letters to a file and counts them in the report."""

    def __init__(
        self, inner: JsonlDeadLetterSink, builder: ReportBuilder, progress: Progress
    ) -> None:
        self.name = inner.name
        self._inner = inner
        self._builder = builder
        self._progress = progress

    async def start(self) -> None:
        """Start the file sink."""
        await self._inner.start()

    async def write(self, letters: Sequence[DeadLetter]) -> None:
        """Write and count."""
        await self._inner.write(letters)
        for letter in letters:
            self._builder.add_dead_letter(letter.reason)
        self._progress.advance(len(letters))

    async def flush(self) -> None:
        """Flush the file sink."""
        await self._inner.flush()

    async def aclose(self) -> None:
        """Close the file sink."""
        await self._inner.aclose()


def _count_lines(files: Sequence[Path]) -> int:
    total = 0
    for path in files:
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                total += block.count(b"\n")
    return total


async def score_files(settings: Settings, files: Sequence[Path], out: Path) -> str:
    """Score ``files`` into ``out``; return the terminal summary."""
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
        dead_letters=CountingDeadLetters(
            JsonlDeadLetterSink(FileSpec(out / "dead-letter.jsonl", "dead-letter")),
            builder,
            progress,
        ),
    )
    await pipeline.start()
    try:
        await pipeline.drained()
    finally:
        await pipeline.aclose()
        progress.close()
    if pipeline.failure is not None:
        raise SidecarError(f"scoring failed: {pipeline.failure}")
    summary = builder.close()
    return summary.text() + f"\nwrote {out / 'events.jsonl'}, {summary.md_path}, {summary.csv_path}"
