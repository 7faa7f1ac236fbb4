"""Kafka source handler logic on faststream's in-memory TestKafkaBroker (no broker needed)."""

from __future__ import annotations

import asyncio
import logging

import orjson
import pytest
from aiokafka import TopicPartition
from aiokafka.errors import TopicAuthorizationFailedError
from faststream.kafka import TestKafkaBroker
from prometheus_client import CollectorRegistry

from sidecar.app import build_engine
from sidecar.config import PipelineSettings, Settings, load_settings, parse_source_uri
from sidecar.pipeline import Pipeline
from sidecar.sources.kafka import KafkaSource, PartitionOffsets
from sidecar.sources.kafka_faststream import counting_logger
from sidecar.sources.kafka_offsets import LagCollector
from sidecar.stages import Batch
from tests.conftest import make_trace
from tests.support.memory import MemoryDLQ, MemorySink


def source(**kafka: object) -> KafkaSource:
    settings = load_settings(kafka=kafka) if kafka else Settings()
    spec = parse_source_uri("kafka://127.0.0.1:9/traces?group=g")
    assert not hasattr(spec, "path")
    return KafkaSource(spec, settings.kafka, CollectorRegistry())  # type: ignore[arg-type]


async def forwarded(src: KafkaSource) -> None:
    """Let the source's forwarding task hand its queued batches to ``emit``."""
    for _ in range(100):
        if not src._backlog:
            break
        await asyncio.sleep(0)
    await asyncio.sleep(0)


def test_commit_point_advances_only_over_the_finished_prefix() -> None:
    part = PartitionOffsets(committed=10)
    a, b, c = part.add(20), part.add(30), part.add(40)
    part.finish(b)
    assert part.due() is None, "batch a (10..19) is not written yet"
    part.finish(a)
    assert part.due() == 30
    part.committed = 30
    assert part.due() is None
    part.finish(c)
    assert part.due() == 40


async def test_handler_emits_records_with_origin_and_tracks_in_flight() -> None:
    src = source()
    batches: list[Batch] = []

    async def emit(batch: Batch) -> None:
        batches.append(batch)

    async with TestKafkaBroker(src.build(emit)) as br:
        await br.publish_batch(b"one", b"two", topic="traces")
        await forwarded(src)
    assert [r.value for b in batches for r in b.records] == [b"one", b"two"]
    rec = batches[0].records[0]
    assert rec.origin == "traces/0@0"
    assert rec.attrs == {"topic": "traces", "partition": "0", "offset": "0"}
    assert src.in_flight == 2
    for b in batches:
        b.done(True)
    assert src.in_flight == 0


async def test_handler_keeps_text_keys_for_dead_letters() -> None:
    src = source()
    batches: list[Batch] = []

    async def emit(batch: Batch) -> None:
        batches.append(batch)

    async with TestKafkaBroker(src.build(emit)) as br:
        await br.publish(b"x", topic="traces", key=b"trace-7")
        await br.publish(b"y", topic="traces", key=b"\xff\xfe")
        await forwarded(src)
    attrs = [r.attrs for b in batches for r in b.records]
    assert attrs[0] is not None and attrs[0]["key"] == "trace-7"
    assert attrs[1] is not None and "key" not in attrs[1]  # not UTF-8: left out


async def test_handler_never_waits_on_a_full_pipeline() -> None:
    """A stuck pipeline blocks the forwarder, not faststream's consume loop (which must keep
    polling to stay in the group); past max_in_flight the partitions pause instead."""
    src = source(max_in_flight=4)
    gate = asyncio.Event()
    emitted: list[Batch] = []

    async def emit(batch: Batch) -> None:
        emitted.append(batch)
        await gate.wait()  # the pipeline's queue is full

    async with TestKafkaBroker(src.build(emit)) as br:
        for i in range(3):
            await asyncio.wait_for(br.publish_batch(b"a%d" % i, b"b%d" % i, topic="traces"), 1)
        await forwarded(src)
        assert len(emitted) == 1 and len(src._backlog) == 2
        assert src.in_flight == 6 and src.paused
        gate.set()
        await forwarded(src)
        assert len(emitted) == 3 and not src._backlog


async def test_backpressure_pauses_and_resumes() -> None:
    src = source(max_in_flight=4)
    batches: list[Batch] = []

    async def emit(batch: Batch) -> None:
        batches.append(batch)

    async with TestKafkaBroker(src.build(emit)) as br:
        await br.publish_batch(b"1", b"2", b"3", topic="traces")
        assert not src.paused
        await br.publish_batch(b"4", b"5", topic="traces")
        assert src.paused, "5 records in flight > max_in_flight=4"
        await forwarded(src)
        batches[0].done(True)  # 2 left in flight <= 4 // 2
        assert not src.paused


async def test_full_pipeline_on_the_in_memory_broker() -> None:
    src = source()
    sink, dlq = MemorySink(), MemoryDLQ()
    pipe = Pipeline(
        sources=[src],
        sinks=[sink],
        dead_letters=dlq,
        engine=build_engine(Settings()),
        registry=CollectorRegistry(),
        settings=PipelineSettings(),
    )
    broker = src.build(pipe._emit)
    async with TestKafkaBroker(broker) as br:
        await pipe.start()  # the source reuses the patched broker
        await br.publish(orjson.dumps(make_trace(trace_id="m1")), "traces")
        await br.publish(b"{broken", "traces")
        for _ in range(100):
            if sink.results and dlq.letters:
                break
            await asyncio.sleep(0.01)
        await pipe.aclose()
    assert [r.trace.trace_id for r in sink.results] == ["m1"]
    assert dlq.letters[0].reason == "not_json"
    assert dlq.letters[0].attrs == {"topic": "traces", "partition": "0", "offset": "0"}
    assert src.in_flight == 0


async def test_revoked_partitions_drop_their_unscored_batches() -> None:
    """Batches still queued for the pipeline when their partition is revoked are dropped
    (the next owner re-reads them from the committed offset), not scored as duplicates."""
    src = source()
    gate = asyncio.Event()
    emitted: list[Batch] = []

    async def emit(batch: Batch) -> None:
        emitted.append(batch)
        await gate.wait()

    async with TestKafkaBroker(src.build(emit)) as br:
        for i in range(3):
            await br.publish_batch(b"a%d" % i, b"b%d" % i, topic="traces")
        await forwarded(src)
        assert len(emitted) == 1 and len(src._backlog) == 2 and src.in_flight == 6
        await src.on_revoked([TopicPartition("other", 0)])
        assert len(src._backlog) == 2, "another partition's revocation keeps them"
        await src.on_revoked([TopicPartition("traces", 0)])
        assert not src._backlog and src.in_flight == 2  # only the batch in the pipeline
        assert src.revoked_records._value.get() == 4
        gate.set()
        await forwarded(src)
        assert len(emitted) == 1


def test_lag_before_the_groups_first_commit_counts_from_where_it_began() -> None:
    """A new group reading from `latest` on an idle partition never commits: hw - 0
    showed the whole topic as lag for ever (and fired KafkaLagGrowing)."""
    assert PartitionOffsets(None, start=5000).done_to == 5000
    assert PartitionOffsets(4200, start=5000).done_to == 4200  # a commit wins

    class Positions:
        in_flight, paused = 0, False

        def positions(self) -> list[tuple[TopicPartition, int | None, int | None]]:
            return [(TopicPartition("t", 0), 5000, None), (TopicPartition("t", 1), 5000, 4200)]

    registry = CollectorRegistry()
    registry.register(LagCollector(Positions()))
    lag = lambda p: registry.get_sample_value(  # noqa: E731
        "rag_sidecar_kafka_lag", {"topic": "t", "partition": p}
    )
    assert lag("0") is None and lag("1") == 800  # no start known either: no series


def test_consumer_errors_logged_by_faststream_are_counted_and_still_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """faststream's consume loop logs a Kafka error and retries every 5 s for ever (an
    authorisation failure): only a counter lets an alert see it."""
    src = source()
    logger = counting_logger(src.consumer_errors)
    with caplog.at_level(logging.INFO, logger="sidecar.kafka.faststream"):
        try:
            raise TopicAuthorizationFailedError()
        except TopicAuthorizationFailedError:
            logger.error("Kafka error occurred", exc_info=True)
        logger.info("consumer started")
        logger.debug("a message")  # below the sidecar logger's level: dropped
    [sample] = [s for s in src.consumer_errors.collect()[0].samples if s.name.endswith("_total")]
    assert sample.labels == {"error": "TopicAuthorizationFailedError"} and sample.value == 1
    assert [r.getMessage() for r in caplog.records] == ["Kafka error occurred", "consumer started"]
