"""The replay source's handling of offsets the log does not hold (real brokers answer
OffsetOutOfRange; tansu answers an empty fetch, so this runs against a stand-in consumer)."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import TopicPartition

from sidecar.config import KafkaSettings
from sidecar.errors import RetryableError
from sidecar.sources.replay import KafkaReplaySource, ReplayRange, _Part
from sidecar.stages import Batch

TP0, TP1 = TopicPartition("traces", 0), TopicPartition("traces", 1)


class OffsetsConsumer:
    """The three consumer calls ``_out_of_range`` makes, over fixed log bounds."""

    def __init__(self, begin: dict[TopicPartition, int], end: dict[TopicPartition, int]) -> None:
        self.begin, self.end = begin, end
        self.paused: list[TopicPartition] = []
        self.seeks: list[tuple[TopicPartition, int]] = []

    async def beginning_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.begin[tp] for tp in tps}

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.end[tp] for tp in tps}

    def pause(self, tp: TopicPartition) -> None:
        self.paused.append(tp)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append((tp, offset))


def source(consumer: OffsetsConsumer) -> KafkaReplaySource:
    src = KafkaReplaySource(("x:1",), "traces", ReplayRange(), KafkaSettings())
    src._consumer = consumer  # type: ignore[assignment]
    src._parts = {TP0: _Part(20, 8, 10), TP1: _Part(None, 50, 3)}
    return src


async def test_past_the_end_finishes_the_partition_instead_of_rereading_it() -> None:
    consumer = OffsetsConsumer({TP0: 0, TP1: 0}, {TP0: 8, TP1: 50})
    src = source(consumer)
    await src._out_of_range({TP0: 10})
    assert src._parts[TP0].done and consumer.paused == [TP0]
    assert consumer.seeks == []  # never back to offset 0


async def test_records_deleted_under_the_replay_skip_to_the_oldest_left(
    caplog: pytest.LogCaptureFixture,
) -> None:
    consumer = OffsetsConsumer({TP0: 0, TP1: 7}, {TP0: 8, TP1: 50})
    src = source(consumer)
    await src._out_of_range({TP1: 3})
    assert consumer.seeks == [(TP1, 7)] and src._parts[TP1].position == 7
    assert not src._parts[TP1].done
    assert "deleted by retention" in caplog.text


async def test_an_offset_inside_the_log_is_an_error_not_a_loop() -> None:
    src = source(OffsetsConsumer({TP0: 0, TP1: 0}, {TP0: 8, TP1: 50}))
    with pytest.raises(RetryableError, match="out of range"):
        await src._out_of_range({TP1: 3})


class PausingBroker:
    """A stand-in consumer over one partition whose broker stops answering fetches
    (``silent_polls`` getmany calls, like a SIGSTOP) after ``first`` records."""

    def __init__(self, n: int, first: int, silent_polls: int) -> None:
        self.msgs = [
            SimpleNamespace(
                topic="traces", partition=0, offset=i, timestamp=1000 + i, key=None, value=b"{}"
            )
            for i in range(n)
        ]
        self.first, self.silent = first, silent_polls
        self.pos, self.answered, self.polls = 0, None, 0

    def last_poll_timestamp(self, tp: TopicPartition) -> int | None:
        return self.answered

    async def position(self, tp: TopicPartition) -> int:
        return self.pos

    def pause(self, tp: TopicPartition) -> None:
        pass

    def resume(self, tp: TopicPartition) -> None:
        pass

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[Any]]:
        await asyncio.sleep(0.02)  # a short poll keeps the test quick
        self.polls += 1
        if self.pos >= self.first and 0 < self.polls - 1 <= self.silent:
            return {}  # the broker is stopped: no answer at all
        take = self.msgs[self.pos : self.pos + (self.first if self.pos < self.first else 10**6)]
        self.pos += len(take)
        self.answered = int(time.time() * 1000)
        return {TP0: take} if take else {}


async def read_all(src: KafkaReplaySource) -> list[str]:
    out: list[str] = []

    async def emit(batch: Batch) -> None:
        out.extend(r.origin for r in batch.records)
        batch.done(True)

    await asyncio.wait_for(src._read(emit), 10)
    return out


async def test_a_broker_that_stops_answering_is_not_the_end_of_a_partition() -> None:
    """tansu reports the end of a one-batch partition as 1, so the watermark alone says
    'done' after the first records; silence without a fetch answer must not."""
    consumer = PausingBroker(100, first=40, silent_polls=10)  # 10 × 20 ms = 4 × idle_s
    src = KafkaReplaySource(("x:1",), "traces", ReplayRange(), KafkaSettings(), idle_s=0.05)
    src._consumer = consumer  # type: ignore[assignment]
    src._parts = {TP0: _Part(None, 1, 0)}
    out = await read_all(src)
    assert len(out) == 100 and out[-1] == "traces/0@99"


async def test_a_broker_that_never_answers_fails_the_replay_at_the_stall_timeout() -> None:
    consumer = PausingBroker(100, first=40, silent_polls=10**6)
    src = KafkaReplaySource(
        ("x:1",), "traces", ReplayRange(), KafkaSettings(), idle_s=0.05, stall_s=0.3
    )
    src._consumer = consumer  # type: ignore[assignment]
    src._parts = {TP0: _Part(None, 1, 0)}
    with pytest.raises(RetryableError, match="no fetch answered"):
        await read_all(src)
