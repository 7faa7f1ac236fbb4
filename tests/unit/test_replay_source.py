"""The replay source's handling of offsets the log does not hold (real brokers answer
OffsetOutOfRange; tansu answers an empty fetch, so this runs against a stand-in consumer)."""

from __future__ import annotations

import pytest
from aiokafka import TopicPartition

from sidecar.config import KafkaSettings
from sidecar.errors import RetryableError
from sidecar.sources.replay import KafkaReplaySource, ReplayRange, _Part

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
