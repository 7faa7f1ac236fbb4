"""Replay a Kafka topic range for backfills and re-scoring.

The replay consumer has **no consumer group** (``group_id=None``): it assigns
partitions itself, seeks, never commits, and so can never move the live group's
offsets. Each partition is read from its start (an offset, or the first offset
at/after a timestamp via ``offsets_for_times``) to its end (an offset, or the
first record at/after the end timestamp). Without an end, the range ends at the
moment the replay started: a partition is finished at the first record stamped
later, or when it has been idle at or past the high watermark seen at start (a
watermark alone is not trusted: some brokers under-report it; tansu does).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from ..config import KafkaSettings
from ..errors import ConfigError
from ..kafkautil import client_kwargs, translate
from ..stages import Batch, Emit, Record

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReplayRange:
    """Where to start and stop; timestamps are epoch seconds, offsets apply per partition."""

    start_time: float | None = None
    end_time: float | None = None
    start_offset: int | None = None
    end_offset: int | None = None


@dataclass(slots=True)
class _Part:
    start: int
    end: int | None  # exclusive; None = until the first record past end_time
    position: int
    done: bool = False


class KafkaReplaySource:
    """Reads a bounded range of a topic without a consumer group."""

    def __init__(
        self,
        bootstrap: tuple[str, ...],
        topic: str,
        rng: ReplayRange,
        settings: KafkaSettings,
        *,
        idle_s: float = 2.0,
        on_progress: Callable[[int], None] | None = None,
    ) -> None:
        self.name = "replay"
        self.topic = topic
        self.range = rng
        self.settings = settings
        self.idle_s = idle_s
        self.on_progress = on_progress
        self.total_estimate = 0
        self.read = 0
        self.skipped = 0
        self._bootstrap = bootstrap
        self._consumer: AIOKafkaConsumer | None = None
        self._parts: dict[TopicPartition, _Part] = {}
        self._task: asyncio.Task[None] | None = None
        self._pending = 0
        self._eof = asyncio.Event()
        self._all_done = asyncio.Event()

    async def prepare(self) -> int:
        """Connect, resolve the range per partition; returns the estimated record count."""
        consumer = AIOKafkaConsumer(
            **client_kwargs(self.settings, self._bootstrap),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.settings.max_records,
        )
        try:
            await consumer.start()
            parts = consumer.partitions_for_topic(self.topic)
            if not parts:
                await consumer.force_metadata_update()
                parts = consumer.partitions_for_topic(self.topic)
            if not parts:
                raise ConfigError(f"topic {self.topic!r} does not exist")
            tps = [TopicPartition(self.topic, p) for p in sorted(parts)]
            consumer.assign(tps)
            begin = await consumer.beginning_offsets(tps)
            end = await consumer.end_offsets(tps)
            starts = dict(begin)
            if self.range.start_time is not None:
                found = await consumer.offsets_for_times(
                    {tp: int(self.range.start_time * 1000) for tp in tps}
                )
                starts = {tp: (f.offset if f is not None else end[tp]) for tp, f in found.items()}
            elif self.range.start_offset is not None:
                starts = {tp: max(begin[tp], self.range.start_offset) for tp in tps}
            for tp in tps:
                stop = self.range.end_offset if self.range.end_offset is not None else None
                self._parts[tp] = _Part(starts[tp], stop, starts[tp])
                consumer.seek(tp, starts[tp])
                upper = end[tp] if stop is None else min(stop, end[tp])
                self.total_estimate += max(upper - starts[tp], 0)
        except ConfigError:
            await consumer.stop()
            raise
        except Exception as exc:
            await consumer.stop()
            raise translate(exc, f"replay of {self.topic}") from exc
        self._consumer = consumer
        self._watermarks = end
        if self.range.end_time is None and self.range.end_offset is None:
            self._end_ms: int | None = int(time.time() * 1000)
        else:
            self._end_ms = None if self.range.end_time is None else int(self.range.end_time * 1000)
        return self.total_estimate

    async def start(self, emit: Emit) -> None:
        """Start reading (calls :meth:`prepare` first if needed)."""
        if self._consumer is None:
            await self.prepare()
        self._task = asyncio.create_task(self._run(emit), name=f"replay:{self.topic}")

    def _finish(self, tp: TopicPartition, part: _Part) -> None:
        part.done = True
        assert self._consumer is not None
        self._consumer.pause(tp)

    async def _run(self, emit: Emit) -> None:
        assert self._consumer is not None
        consumer = self._consumer
        end_ms = self._end_ms
        start_ms = None if self.range.start_time is None else int(self.range.start_time * 1000)
        last_data = time.monotonic()
        try:
            for tp, part in self._parts.items():
                if part.end is not None and part.position >= part.end:
                    self._finish(tp, part)
            while not all(p.done for p in self._parts.values()):
                batch = await consumer.getmany(
                    timeout_ms=200, max_records=self.settings.max_records
                )
                records: list[Record] = []
                now = time.time()
                for tp, msgs in batch.items():
                    part = self._parts[tp]
                    if part.done:
                        continue
                    for m in msgs:
                        if (part.end is not None and m.offset >= part.end) or (
                            end_ms is not None and m.timestamp >= end_ms
                        ):
                            self._finish(tp, part)
                            break
                        part.position = m.offset + 1
                        if start_ms is not None and m.timestamp < start_ms:
                            # Seeking by time is only as exact as the broker's time index
                            # (and producers' clocks); the range itself is by timestamp.
                            self.skipped += 1
                            continue
                        attrs = {
                            "topic": tp.topic,
                            "partition": str(tp.partition),
                            "offset": str(m.offset),
                        }
                        records.append(
                            Record(
                                m.value or b"", f"{tp.topic}/{tp.partition}@{m.offset}", now, attrs
                            )
                        )
                if records:
                    last_data = time.monotonic()
                    self.read += len(records)
                    self._pending += 1
                    await emit(Batch(self.name, records, self._done))
                elif time.monotonic() - last_data >= self.idle_s:
                    # Nothing arrived for idle_s: the range holds no more data.
                    short = [
                        tp.partition
                        for tp, part in self._parts.items()
                        if not part.done and part.position < self._watermarks[tp]
                    ]
                    if short:
                        log.warning(
                            "replay: partitions went idle below their start watermark",
                            extra={"fields": {"topic": self.topic, "partitions": short}},
                        )
                    break
        finally:
            self._eof.set()
            self._check()

    def _done(self, ok: bool) -> None:
        self._pending -= 1
        self._check()

    def _check(self) -> None:
        if self._eof.is_set() and self._pending == 0:
            self._all_done.set()

    async def drained(self) -> None:
        """Return when the range is read and every batch written."""
        await self._all_done.wait()

    async def aclose(self) -> None:
        """Stop reading and disconnect (never commits)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
