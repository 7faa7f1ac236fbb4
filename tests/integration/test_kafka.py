"""Kafka source and sinks against a real Kafka-protocol broker (tansu)."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest
from prometheus_client import CollectorRegistry

from sidecar.app import build_pipeline
from sidecar.config import load_settings
from sidecar.pipeline import Pipeline
from tests.conftest import make_trace
from tests.support.kafka_io import committed, create_topics, produce, read_all
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
