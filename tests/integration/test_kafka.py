"""Kafka source and sinks against a real Kafka-protocol broker (tansu)."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import orjson
import pytest
from prometheus_client import CollectorRegistry

from sidecar.app import build_engine, build_pipeline, build_sources
from sidecar.config import Settings, load_settings
from sidecar.pipeline import Pipeline
from sidecar.sources.kafka import KafkaSource
from sidecar.stages import Sink
from tests.conftest import make_trace
from tests.support.kafka_io import committed, create_topics, produce, read_all
from tests.support.memory import GatedSink, MemoryDLQ
from tests.support.tansu import Broker

pytestmark = pytest.mark.integration


def kafka_settings(broker: Broker, **over: object):  # type: ignore[no-untyped-def]
    b = broker.bootstrap
    return load_settings(
        sources=[f"kafka://{b}/traces?group=g1"],
        events=f"kafka://{b}/events",
        dead_letter=f"kafka://{b}/dlq",
        kafka={
            "enable_idempotence": False,
            "session_timeout_ms": 6000,
            "heartbeat_interval_ms": 500,
            "commit_interval_s": 0.2,
            **over,
        },
    )


def kafka_pipeline(
    settings: Settings, sink: Sink
) -> tuple[Pipeline, KafkaSource, CollectorRegistry]:
    """A pipeline from the settings' Kafka source to ``sink`` alone (no events, no drift)."""
    registry = CollectorRegistry()
    [source] = build_sources(settings, registry)
    assert isinstance(source, KafkaSource)
    pipe = Pipeline(
        sources=[source],
        sinks=[sink],
        dead_letters=MemoryDLQ(),
        engine=build_engine(settings),
        registry=registry,
        settings=settings.pipeline,
    )
    return pipe, source, registry


async def wait_for(cond, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def scored(registry: CollectorRegistry) -> float:
    return (
        registry.get_sample_value(
            "rag_sidecar_traces_total", {"source": "kafka", "outcome": "scored"}
        )
        or 0.0
    )


async def test_consume_score_publish_dead_letter_and_commit(kafka: Broker) -> None:
    await create_topics(kafka.bootstrap, "traces", "events", "dlq")
    good = [orjson.dumps(make_trace(trace_id=f"k{i}")) for i in range(600)]
    bad = [b"not json", b"[]", b'{"x": 1}']
    values = good[:100] + bad + good[100:]
    await produce(
        kafka.bootstrap, "traces", values, keys=[str(i).encode() for i in range(len(values))]
    )

    registry = CollectorRegistry()
    pipe: Pipeline = build_pipeline(kafka_settings(kafka), registry)
    await pipe.start()
    try:
        await wait_for(lambda: scored(registry) >= 600)
        await asyncio.sleep(0.5)  # a commit interval or two
    finally:
        await pipe.aclose()

    events = await read_all(kafka.bootstrap, "events", expect=600)
    docs = [orjson.loads(m.value) for m in events]
    assert {d["trace_id"] for d in docs} == {f"k{i}" for i in range(600)}
    for m, d in zip(events, docs, strict=True):
        assert m.key == d["trace_id"].encode()
        assert dict(m.headers)["event_id"] == d["event_id"].encode()
    letters = await read_all(kafka.bootstrap, "dlq", expect=3)
    assert sorted(m.value for m in letters) == sorted(bad)
    assert sorted(m.key for m in letters) == [b"100", b"101", b"102"]  # original keys kept
    reasons = sorted(dict(m.headers)["dlq_reason"] for m in letters)
    assert reasons == [b"not_json", b"not_object", b"unknown_format"]
    h = dict(letters[0].headers)
    assert (
        h["dlq_topic"] == b"traces" and h["dlq_partition"].isdigit() and h["dlq_offset"].isdigit()
    )
    offsets = await committed(kafka.bootstrap, "g1", "traces", 3)
    assert sum(o or 0 for o in offsets.values()) == len(values), offsets


async def test_restart_resumes_from_committed_offsets(kafka: Broker) -> None:
    await create_topics(kafka.bootstrap, "traces", "events", "dlq")
    first = [orjson.dumps(make_trace(trace_id=f"a{i}")) for i in range(300)]
    await produce(kafka.bootstrap, "traces", first)
    for round_ in range(2):
        registry = CollectorRegistry()
        pipe = build_pipeline(kafka_settings(kafka), registry)
        await pipe.start()
        try:
            await wait_for(lambda r=registry: scored(r) >= 300)
            await asyncio.sleep(0.5)
        finally:
            await pipe.aclose()
        if round_ == 0:
            await produce(
                kafka.bootstrap,
                "traces",
                [orjson.dumps(make_trace(trace_id=f"b{i}")) for i in range(300)],
            )
    events = await read_all(kafka.bootstrap, "events", expect=600)
    ids = [orjson.loads(m.value)["trace_id"] for m in events]
    assert sorted(set(ids)) == sorted({f"a{i}" for i in range(300)} | {f"b{i}" for i in range(300)})
    assert len(ids) == 600, "the second run must not re-read committed offsets"


async def test_broker_outage_reconnects_and_resumes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """tansu keeps data only in memory, so a true broker restart loses the topic; instead the
    broker's listener goes away (all connections reset, nothing accepted) for 4 s."""
    from tests.conftest import free_port
    from tests.support.tansu import start_broker
    from tests.support.tcpproxy import TcpProxy

    proxy_port = free_port()
    broker = start_broker(tmp_path, advertised_port=proxy_port)
    proxy = TcpProxy(proxy_port, broker.port)
    await proxy.start()
    try:
        via = Broker(proxy_port, broker.proc, broker.log)
        await create_topics(via.bootstrap, "traces", "events", "dlq")
        await produce(
            via.bootstrap,
            "traces",
            [orjson.dumps(make_trace(trace_id=f"o{i}")) for i in range(500)],
        )
        registry = CollectorRegistry()
        pipe = build_pipeline(kafka_settings(via), registry)
        await pipe.start()
        try:
            await wait_for(lambda: scored(registry) >= 500)
            await proxy.cut()
            await asyncio.sleep(4)
            assert pipe.failure is None
            await proxy.restore()
            await produce(
                via.bootstrap,
                "traces",
                [orjson.dumps(make_trace(trace_id=f"p{i}")) for i in range(500)],
            )
            await wait_for(lambda: scored(registry) >= 1000, timeout=60)
            assert pipe.failure is None
        finally:
            await pipe.aclose()
        events = await read_all(via.bootstrap, "events", expect=1000)
        ids = {orjson.loads(m.value)["trace_id"] for m in events}
        assert ids == {f"o{i}" for i in range(500)} | {f"p{i}" for i in range(500)}
    finally:
        await proxy.aclose()
        broker.stop()


async def test_malformed_messages_interleaved_all_dead_lettered(kafka: Broker) -> None:
    await create_topics(kafka.bootstrap, "traces", "events", "dlq")
    values: list[bytes] = []
    for i in range(10_000):
        values.append(orjson.dumps(make_trace(trace_id=f"g{i}")))
        values.append(b"\x00\xffgarbage %d" % i if i % 2 else b'{"trace_id": "x%d"}' % i)
    await produce(kafka.bootstrap, "traces", values)
    registry = CollectorRegistry()
    pipe = build_pipeline(kafka_settings(kafka), registry)
    await pipe.start()
    try:
        await wait_for(lambda: scored(registry) >= 10_000, timeout=90)
        await asyncio.sleep(0.5)
    finally:
        await pipe.aclose()
    invalid = registry.get_sample_value(
        "rag_sidecar_traces_total", {"source": "kafka", "outcome": "invalid"}
    )
    assert scored(registry) == 10_000 and invalid == 10_000
    letters = await read_all(kafka.bootstrap, "dlq", expect=10_000, timeout=60)
    assert len(letters) == 10_000
    assert {dict(m.headers)["dlq_reason"] for m in letters} == {b"not_json", b"unknown_format"}
    events = await read_all(kafka.bootstrap, "events", expect=10_000, timeout=60)
    assert {orjson.loads(m.value)["trace_id"] for m in events} == {f"g{i}" for i in range(10_000)}


async def test_two_replicas_split_partitions_without_overlap(kafka: Broker) -> None:
    await create_topics(kafka.bootstrap, "traces", "events", "dlq", partitions=4)
    regs = [CollectorRegistry(), CollectorRegistry()]
    pipes = [build_pipeline(kafka_settings(kafka), r) for r in regs]
    sinks = []
    for pipe in pipes:
        await pipe.start()
    try:
        # Wait for a stable assignment: both replicas own partitions and together all four.
        def assignment() -> list[set[int]]:
            out = []
            for pipe in pipes:
                src = pipe.sources[0]
                consumer = src._consumer  # type: ignore[attr-defined]
                out.append({tp.partition for tp in consumer.assignment()} if consumer else set())
            return out

        await wait_for(
            lambda: all(assignment()) and set().union(*assignment()) == {0, 1, 2, 3}, timeout=60
        )
        first = assignment()
        assert not (first[0] & first[1])
        await produce(
            kafka.bootstrap,
            "traces",
            [orjson.dumps(make_trace(trace_id=f"r{i}")) for i in range(2000)],
            keys=[str(i).encode() for i in range(2000)],
        )
        await wait_for(lambda: scored(regs[0]) + scored(regs[1]) >= 2000, timeout=60)
        await asyncio.sleep(0.5)
        assert assignment() == first, "no rebalance happened during the run"
        sinks = [scored(r) for r in regs]
    finally:
        for pipe in pipes:
            await pipe.aclose()
    assert sum(sinks) == 2000 and all(n > 0 for n in sinks), sinks
    events = await read_all(kafka.bootstrap, "events", expect=2000)
    ids = [orjson.loads(m.value)["trace_id"] for m in events]
    assert len(ids) == 2000 and len(set(ids)) == 2000, "no trace scored by both replicas"


async def test_long_sink_outage_keeps_the_consumer_in_its_group(kafka: Broker) -> None:
    """A sink stuck for 3x max_poll_interval_ms: the consumer keeps polling (paused), so it
    is never dropped from the group; afterwards everything is written and committed."""
    await create_topics(kafka.bootstrap, "traces", "events")
    n = 3000
    await produce(
        kafka.bootstrap, "traces", [orjson.dumps(make_trace(trace_id=f"o{i}")) for i in range(n)]
    )
    # Small batches: the pipeline's queues (2 x 8 batches) fill long before max_in_flight.
    settings = kafka_settings(kafka, max_poll_interval_ms=2000, max_in_flight=2000, max_records=50)
    sink = GatedSink()
    pipe, source, _ = kafka_pipeline(settings, sink)
    await pipe.start()
    try:
        await wait_for(lambda: source.in_flight >= 900)  # the pipeline's queues are full
        consumer = source._consumer
        assert consumer is not None
        # aiokafka leaves the group when no getmany() ran for max_poll_interval_ms: the time
        # since the last one ended must stay short through an outage 3 times that long.
        idle = 0.0
        for _ in range(30):
            await asyncio.sleep(0.2)
            idle = max(idle, consumer._subscription.fetcher_idle_time)
        assert idle < 1.0, f"the consumer stopped polling for {idle:.1f} s"
        assert source.paused and source.in_flight >= 2000  # read ahead up to max_in_flight
        sink.gate.set()
        await wait_for(lambda: len(sink.written) >= n)
        await asyncio.sleep(0.5)  # a commit interval or two
    finally:
        await pipe.aclose()
    assert set(sink.written) == {f"o{i}" for i in range(n)}
    offsets = await committed(kafka.bootstrap, "g1", "traces", 3)
    assert sum(o or 0 for o in offsets.values()) == n, offsets


async def test_shutdown_with_the_broker_frozen_does_not_hang(kafka: Broker) -> None:
    """SIGSTOP the broker, then stop the sidecar: commits and the producer's flush are bounded
    (request_timeout_ms, delivery_timeout_s), so the stop finishes instead of hanging until
    Kubernetes kills the pod."""
    await create_topics(kafka.bootstrap, "traces", "events", "dlq")
    await produce(
        kafka.bootstrap, "traces", [orjson.dumps(make_trace(trace_id=f"f{i}")) for i in range(200)]
    )
    registry = CollectorRegistry()
    settings = kafka_settings(kafka, request_timeout_ms=8000, delivery_timeout_s=2.0)
    pipe = build_pipeline(settings, registry)
    await pipe.start()
    try:
        await wait_for(lambda: scored(registry) >= 200)
        os.kill(kafka.proc.pid, signal.SIGSTOP)
        started = time.monotonic()
        await asyncio.wait_for(pipe.aclose(), 60)
        took = time.monotonic() - started
    finally:
        os.kill(kafka.proc.pid, signal.SIGCONT)
    # The final commit gives up after request_timeout_ms (8 s); before it was bounded, this
    # stop hung past the 60 s limit.
    assert took < 30, f"stopped in {took:.1f} s with the broker frozen"
