"""Replay a Kafka topic range for backfills and re-scoring.

The replay consumer has **no consumer group** (``group_id=None``): it assigns
partitions itself, seeks, never commits, and so can never move the live group's
offsets. Each partition is read from its start (an offset, or the first offset
at/after a timestamp via ``offsets_for_times``) to its end: an offset, or by time.
Without ``--to`` (or with one later than the moment the replay started, which is cut
to that moment, so a live topic never turns a replay into a tail) the end is the
first record stamped later that was written after the start (at or past the high
watermark seen then), or else a run of ``PAST_END_RUN`` (20) records stamped past the
end. A record stamped past the end before that (a producer's clock ahead) is skipped.

**Done, or stuck.** A partition is done at its end, or once its position has
reached the high watermark seen at start, it got nothing for ``idle_s`` while not
paused, and the broker has answered a fetch at that position with nothing. The last
condition keeps a broker pause (no answers at all) from passing for the end: the
watermark alone cannot, as some brokers under-report it (tansu: the base offset of the
last batch + 1). A partition still below that watermark is never taken as done: if it
gets nothing for ``stall_s`` the replay fails (:class:`~sidecar.errors.RetryableError`)
instead of ending early with a quietly short output; so does a batch the pipeline
could not write.

**Time order.** Records go out merged by timestamp across partitions: a record
is emitted only once every unfinished partition has been read up to its time,
and a partition that runs ahead is paused when it holds its share of
``max_records`` (memory stays near ``max_records`` whatever the partition count). A
consumer otherwise drains one partition's fetch (up to 1 MiB) before the next,
which on slow topics spans hours, and the OpenMetrics backfill would have to
move most samples forward in time.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import OffsetOutOfRangeError

from ..config import KafkaSettings
from ..errors import ConfigError, RetryableError, SidecarError
from ..kafkautil import client_kwargs, to_record, translate
from ..stages import Batch, Emit, Record

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReplayRange:
    """Where to start and stop; timestamps are epoch seconds, offsets apply per partition."""

    start_time: float | None = None
    end_time: float | None = None
    start_offset: int | None = None
    end_offset: int | None = None


PAST_END_RUN = 20
"""Consecutive records stamped past the end time that end a partition: one record from
a producer whose clock is ahead is skipped, not taken as the end."""


@dataclass(slots=True)
class _Part:
    end: int | None  # exclusive; None = until the first record past the end time
    watermark: int  # the high watermark when the replay started
    position: int  # the next offset to read
    done: bool = False
    paused: bool = False
    last_ts: int = -1  # latest record time read (ms)
    past_end: int = 0  # consecutive records stamped past the end time
    quiet_since: float = 0.0  # monotonic: when records last came (or it was resumed)
    took_ms: int = 0  # wall clock (ms) of the same moment: later fetch answers are newer
    answered_empty: bool = False  # a fetch at the current position came back with nothing
    buf: deque[tuple[int, int, Any]] = field(default_factory=deque)  # (ms, offset, message)

    @property
    def horizon(self) -> float:
        """Up to which time (ms) this partition has been read; inf once it is done.

        Reaching the start watermark is not enough: some brokers under-report it (tansu:
        the base offset of the last batch), and the unread tail would go out late.
        """
        return math.inf if self.done else self.last_ts


def _by_time(item: tuple[int, int, int, Any]) -> tuple[int, int, int]:
    return item[0], item[1], item[2]


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
        stall_s: float = 120.0,
    ) -> None:
        self.name = "replay"
        self.topic = topic
        self.range = rng
        self.settings = settings
        self.idle_s = idle_s
        self.stall_s = max(stall_s, idle_s)
        self.total_estimate = 0
        self.read = 0
        self.skipped = 0
        self._bootstrap = bootstrap
        self._consumer: AIOKafkaConsumer | None = None
        self._parts: dict[TopicPartition, _Part] = {}
        self._task: asyncio.Task[None] | None = None
        self._pending = 0
        self._error: SidecarError | None = None
        self._eof = asyncio.Event()
        self._all_done = asyncio.Event()
        self._end_ms: int | None = None
        self._open_end = True  # the end is the replay's start: the watermark bounds it

    async def prepare(self) -> int:
        """Connect, resolve the range per partition; returns the estimated record count."""
        consumer = AIOKafkaConsumer(
            **client_kwargs(self.settings, self._bootstrap),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="none",  # out of range: handled in _out_of_range
            max_poll_records=self.settings.max_records,
        )
        started = time.time()
        rng = self.range
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
            if rng.start_time is not None:
                starts = await self._offsets_at(consumer, rng.start_time, end)
            elif rng.start_offset is not None:
                starts = {tp: max(begin[tp], rng.start_offset) for tp in tps}
            uppers = dict(end)
            if rng.end_time is not None and rng.end_time < started:
                uppers = await self._offsets_at(consumer, rng.end_time, end)
            for tp in tps:
                stop = rng.end_offset
                self._parts[tp] = _Part(stop, end[tp], starts[tp])
                consumer.seek(tp, starts[tp])
                upper = uppers[tp] if stop is None else min(stop, end[tp])
                self.total_estimate += max(upper - starts[tp], 0)
        except ConfigError:
            await consumer.stop()
            raise
        except Exception as exc:
            await consumer.stop()
            raise translate(exc, f"replay of {self.topic}") from exc
        self._consumer = consumer
        if rng.end_offset is None:
            end_s = started if rng.end_time is None else min(rng.end_time, started)
            self._end_ms = int(end_s * 1000)
            self._open_end = rng.end_time is None or rng.end_time >= started
        return self.total_estimate

    @staticmethod
    async def _offsets_at(
        consumer: AIOKafkaConsumer, at: float, end: dict[TopicPartition, int]
    ) -> dict[TopicPartition, int]:
        found = await consumer.offsets_for_times({tp: int(at * 1000) for tp in end})
        return {tp: (f.offset if f is not None else end[tp]) for tp, f in found.items()}

    async def start(self, emit: Emit) -> None:
        """Start reading (calls :meth:`prepare` first if needed)."""
        if self._consumer is None:
            await self.prepare()
        self._task = asyncio.create_task(self._run(emit), name=f"replay:{self.topic}")

    async def _run(self, emit: Emit) -> None:
        try:
            await self._read(emit)
        except asyncio.CancelledError:
            raise
        except SidecarError as exc:
            self._error = exc
        except Exception as exc:
            self._error = translate(exc, f"replay of {self.topic}")
        finally:
            self._eof.set()
            self._check()

    async def _read(self, emit: Emit) -> None:
        assert self._consumer is not None
        consumer, parts = self._consumer, self._parts
        cap = max(self.settings.max_records, 1)
        hold = max(cap // len(parts), 50)  # per partition: memory ~ cap, not partitions × cap
        now, wall_ms = time.monotonic(), int(time.time() * 1000)
        for tp, part in parts.items():
            part.quiet_since, part.took_ms = now, wall_ms
            if part.end is not None and part.position >= part.end:
                self._finish(tp, part)
        while not all(p.done and not p.buf for p in parts.values()):
            answers = {tp: consumer.last_poll_timestamp(tp) for tp in parts}
            try:
                fetched = await consumer.getmany(timeout_ms=200, max_records=cap)
            except OffsetOutOfRangeError as exc:
                await self._out_of_range(exc.args[0] if exc.args else {})
                continue
            now, wall_ms = time.monotonic(), int(time.time() * 1000)
            for tp, msgs in fetched.items():
                part = parts[tp]
                if not part.done and msgs:
                    part.quiet_since, part.took_ms = now, wall_ms
                    part.answered_empty = False
                    self._take(tp, part, msgs)
            if sum(map(len, fetched.values())) < cap:
                self._note_empty_answers(answers, fetched)
            await self._settle(now)
            records = self._ready(hold)
            for i in range(0, len(records), cap):
                chunk = records[i : i + cap]
                self.read += len(chunk)
                self._pending += 1
                await emit(Batch(self.name, chunk, self._done))

    def _note_empty_answers(
        self, answers: dict[TopicPartition, int | None], fetched: dict[TopicPartition, Any]
    ) -> None:
        """``answers``: each partition's last fetch answer (ms) before a ``getmany`` that
        handed out everything buffered. One that came after a partition's last records
        and gave it none was an empty answer at its position: the broker is there, and
        has nothing more (yet)."""
        for tp, part in self._parts.items():
            answered = answers[tp]
            if part.paused or fetched.get(tp) or answered is None:
                continue
            if answered > part.took_ms:
                part.answered_empty = True

    def _take(self, tp: TopicPartition, part: _Part, msgs: list[Any]) -> None:
        """Buffer a partition's fetched records that fall in the range; finish it at its end."""
        end_ms, open_end = self._end_ms, self._open_end
        start_ms = None if self.range.start_time is None else int(self.range.start_time * 1000)
        for m in msgs:
            if part.end is not None and m.offset >= part.end:
                self._finish(tp, part)
                return
            ts = m.timestamp
            if end_ms is not None and ts >= end_ms:
                # The end by time: a record past it written after the replay started (open
                # end), or a run of them. A lone one (a producer's clock ahead) is skipped.
                part.past_end += 1
                if (open_end and m.offset >= part.watermark) or part.past_end >= PAST_END_RUN:
                    self._finish(tp, part)
                    return
                part.position = m.offset + 1
                self.skipped += 1
                continue
            part.past_end = 0
            part.position = m.offset + 1
            part.last_ts = max(part.last_ts, ts)
            if start_ms is not None and ts < start_ms:
                # Seeking by time is only as exact as the broker's time index
                # (and producers' clocks); the range itself is by timestamp.
                self.skipped += 1
                continue
            part.buf.append((ts, m.offset, m))
        if part.end is not None and part.position >= part.end:
            self._finish(tp, part)

    async def _out_of_range(self, offsets: dict[TopicPartition, int]) -> None:
        """A fetch offset the log does not hold: past its end (nothing of the range is
        there: the partition is done) or below its start (retention deleted records
        under the replay: skip to the oldest left, and say how many were lost)."""
        assert self._consumer is not None
        tps = [tp for tp in offsets if tp in self._parts]
        if not tps:
            raise RetryableError(f"replay of {self.topic}: offset out of range ({offsets})")
        begin = await self._consumer.beginning_offsets(tps)
        end = await self._consumer.end_offsets(tps)
        for tp in tps:
            part, offset = self._parts[tp], offsets[tp]
            if offset >= end[tp]:
                self._finish(tp, part)
            elif offset < begin[tp]:
                log.warning(
                    "replay: records deleted by retention before they were read",
                    extra={"fields": {"partition": tp.partition, "lost": begin[tp] - offset}},
                )
                part.position = begin[tp]
                self._consumer.seek(tp, begin[tp])
            else:  # the broker disagrees with itself: say so rather than loop
                raise RetryableError(
                    f"replay of {self.topic}: offset {offset} of partition {tp.partition} "
                    f"out of range, but within {begin[tp]}..{end[tp]}"
                )

    async def _settle(self, now: float) -> None:
        """Partitions that got nothing for ``idle_s`` (paused ones wait for the others, so
        their silence says nothing) are done once at their start watermark with an empty
        fetch answer; one with nothing for ``stall_s`` otherwise (below its watermark, or
        the broker not answering) fails the replay."""
        assert self._consumer is not None
        for tp, part in self._parts.items():
            quiet = now - part.quiet_since
            if part.done or part.paused or quiet < self.idle_s:
                continue
            # The consumer's position also steps over control records and compacted gaps.
            part.position = max(part.position, await self._consumer.position(tp))
            if part.position >= part.watermark and part.answered_empty:
                self._finish(tp, part)
            elif quiet >= self.stall_s:
                why = (
                    f"still below its end {part.watermark}"
                    if part.position < part.watermark
                    else "and no fetch answered"
                )
                raise RetryableError(
                    f"replay of {self.topic}: no records for {quiet:.0f}s with partition "
                    f"{tp.partition} at offset {part.position}, {why}; the output is incomplete"
                )

    def _ready(self, hold: int) -> list[Record]:
        """Buffered records every unfinished partition has read past, oldest first; a
        partition holding ``hold`` records or more is paused until the others catch up."""
        parts = self._parts
        safe = min(p.horizon for p in parts.values())
        ready: list[tuple[int, int, int, Any]] = []
        for p in parts.values():
            buf = p.buf
            while buf and buf[0][0] <= safe:  # a partition's own order is kept
                ts, offset, m = buf.popleft()
                ready.append((ts, m.partition, offset, m))
        ready.sort(key=_by_time)
        now = time.time()
        out = [to_record(m, now) for *_, m in ready]  # dead letters keep the key, as live
        assert self._consumer is not None
        resumed = time.monotonic()
        for tp, p in parts.items():  # a partition ahead of the others waits for them
            full = len(p.buf) >= hold
            if full and not p.paused and not p.done:
                self._consumer.pause(tp)  # aiokafka drops what it prefetched for it
                p.paused = True
            elif p.paused and not full and not p.done:
                self._consumer.resume(tp)
                p.paused = False
                p.quiet_since, p.took_ms = resumed, int(time.time() * 1000)
                p.answered_empty = False
        return out

    def _finish(self, tp: TopicPartition, part: _Part) -> None:
        part.done = True
        assert self._consumer is not None
        self._consumer.pause(tp)

    def _done(self, ok: bool) -> None:
        self._pending -= 1
        if not ok and self._error is None:  # a replay never reports success with a gap
            self._error = SidecarError(f"replay of {self.topic}: a batch was not written")
        self._check()

    def _check(self) -> None:
        if self._eof.is_set() and self._pending == 0:
            self._all_done.set()

    async def drained(self) -> None:
        """Return when the range is read and every batch written; raise if reading failed."""
        await self._all_done.wait()
        if self._error is not None:
            raise self._error

    async def aclose(self) -> None:
        """Stop reading and disconnect (never commits)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
