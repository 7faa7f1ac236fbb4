"""The Kafka source against tansu: record headers, topic patterns, lag while paused."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry

from sidecar.app import build_pipeline
from sidecar.config import load_settings
from tests.conftest import make_trace
from tests.integration.test_kafka import kafka_pipeline, kafka_settings, scored, wait_for
from tests.support.kafka_io import committed, create_topics, produce, read_all
from tests.support.memory import GatedSink
from tests.support.tansu import Broker

pytestmark = pytest.mark.integration


async def test_records_with_binary_or_null_headers_are_scored(kafka: Broker) -> None:
    """faststream's own parser decoded every header as UTF-8: a batch holding one binary (or
    null) header value was dropped unscored, and later commits moved past it."""
    await create_topics(kafka.bootstrap, "traces", "events", "dlq", partitions=1)
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap)
    await producer.start()
    try:
        headers: list[list[tuple[str, bytes | None]]] = [
            [("traceparent-bin", b"\xff\xfe\x00\x01")],
            [("empty", None)],
            [("ok", b"text")],
        ]
        futures = [
            await producer.send("traces", orjson.dumps(make_trace(trace_id=f"h{i}")), headers=h)
            for i, h in enumerate(headers)
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    registry = CollectorRegistry()
    pipe = build_pipeline(kafka_settings(kafka), registry)
    await pipe.start()
    try:
        await asyncio.sleep(1)  # the first batch is read (and, before the fix, dropped)
        await produce(kafka.bootstrap, "traces", [orjson.dumps(make_trace(trace_id="after"))])
        await wait_for(lambda: scored(registry) >= 4)
        await asyncio.sleep(0.5)  # a commit interval or two
    finally:
        await pipe.aclose()
    events = await read_all(kafka.bootstrap, "events", expect=4)
    assert {orjson.loads(m.value)["trace_id"] for m in events} == {"h0", "h1", "h2", "after"}
    assert await committed(kafka.bootstrap, "g1", "traces", 1) == {0: 4}


async def test_topic_pattern_matches_whole_names_and_takes_quantifiers(kafka: Broker) -> None:
    r"""``traces-\d{2}``: faststream read ``{2}`` as a path parameter (the start failed with
    ``re.error``), and aiokafka's prefix match also took ``traces-01-dlq``."""
    topics = ("traces-01", "traces-02", "traces-01-dlq")
    await create_topics(kafka.bootstrap, *topics, "events", "dlq", partitions=1)
    for t in topics:
        await produce(
            kafka.bootstrap, t, [orjson.dumps(make_trace(trace_id=f"{t}/{i}")) for i in range(5)]
        )
    b = kafka.bootstrap
    settings = load_settings(
        sources=[f"kafka://{b}/?group=g1&pattern=traces-\\d{{2}}"],
        events=f"kafka://{b}/events",
        dead_letter=f"kafka://{b}/dlq",
        kafka={"enable_idempotence": False, "commit_interval_s": 0.2},
    )
    registry = CollectorRegistry()
    pipe = build_pipeline(settings, registry)
    await pipe.start()
    try:
        await wait_for(lambda: scored(registry) >= 10)
        await asyncio.sleep(1)  # nothing more arrives from traces-01-dlq
        consumer = pipe.sources[0]._consumer  # type: ignore[attr-defined]
        assert {tp.topic for tp in consumer.assignment()} == {"traces-01", "traces-02"}
    finally:
        await pipe.aclose()
    assert scored(registry) == 10
    events = await read_all(kafka.bootstrap, "events", expect=10)
    assert {orjson.loads(m.value)["trace_id"].split("/")[0] for m in events} == {
        "traces-01",
        "traces-02",
    }


async def test_lag_keeps_growing_while_paused(kafka: Broker) -> None:
    """Paused partitions are not fetched, so aiokafka's highwater stays where the pause found
    it: the lag must come from the log-end offsets instead, or it stops growing exactly when
    the sidecar falls behind."""
    await create_topics(kafka.bootstrap, "traces", "events", partitions=1)
    await produce(kafka.bootstrap, "traces", [b"{}"] * 400)
    settings = kafka_settings(kafka, max_in_flight=100, max_records=50)
    sink = GatedSink()
    pipe, source, registry = kafka_pipeline(settings, sink)

    def lag() -> float | None:
        labels = {"topic": "traces", "partition": "0"}
        return registry.get_sample_value("rag_sidecar_kafka_lag", labels)

    await pipe.start()
    try:
        await wait_for(lambda: source.paused and lag() == 400)
        await produce(kafka.bootstrap, "traces", [b"{}"] * 299)
        # Alone in its batch: tansu answers ListOffsets(latest) with the last batch's base
        # offset + 1 (Apache Kafka: the log-end offset), so the last batch holds one record.
        await produce(kafka.bootstrap, "traces", [b"{}"])
        await wait_for(lambda: lag() == 700, timeout=10)
        assert source.paused
    finally:
        sink.gate.set()
        await pipe.aclose()


async def test_a_new_group_from_latest_on_an_idle_topic_has_no_lag(kafka: Broker) -> None:
    """Nothing is read, so nothing is ever committed: the lag counted from offset 0 and
    showed the whole topic (600) for ever; it counts from where the group began."""
    await create_topics(kafka.bootstrap, "traces", "events", "dlq", partitions=1)
    await produce(kafka.bootstrap, "traces", [b"{}"] * 599)
    await produce(kafka.bootstrap, "traces", [b"{}"])  # tansu's end offset: see above
    registry = CollectorRegistry()
    pipe = build_pipeline(kafka_settings(kafka, auto_offset_reset="latest"), registry)
    labels = {"topic": "traces", "partition": "0"}
    await pipe.start()
    try:
        await wait_for(lambda: registry.get_sample_value("rag_sidecar_kafka_lag", labels) == 0)
        await produce(kafka.bootstrap, "traces", [orjson.dumps(make_trace(trace_id="new"))])
        await wait_for(lambda: scored(registry) == 1)
    finally:
        await pipe.aclose()
    assert await committed(kafka.bootstrap, "g1", "traces", 1) == {0: 601}
