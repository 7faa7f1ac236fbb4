"""Replay: a range of a real topic re-scored into a file and OpenMetrics; offsets untouched."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from tests.conftest import make_trace, require_tool
from tests.support.kafka_io import committed, create_topics
from tests.support.prom import query
from tests.support.tansu import Broker

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
T0 = 1_793_491_200  # 2026-11-01T00:00:00Z


async def produce_timed(bootstrap: str, n: int) -> None:
    """n traces, one per minute from T0, with matching record and trace timestamps."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        futs = []
        for i in range(n):
            ts = T0 + 60 * i
            doc = make_trace(trace_id=f"h{i}", timestamp=ts, app="a" if i % 2 else "b")
            futs.append(await producer.send("traces", orjson.dumps(doc), timestamp_ms=ts * 1000))
        await asyncio.gather(*futs)
    finally:
        await producer.stop()


async def commit_live_group(bootstrap: str) -> dict[int, int | None]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id="live", enable_auto_commit=False
    )
    await consumer.start()
    try:
        tps = [TopicPartition("traces", p) for p in range(2)]
        consumer.assign(tps)
        await consumer.commit(dict.fromkeys(tps, 5))
    finally:
        await consumer.stop()
    return await committed(bootstrap, "live", "traces", 2)


def test_replay_time_range_to_file_and_openmetrics(
    kafka: Broker, tmp_path: Path, prometheus: Callable[[Path], str]
) -> None:
    promtool = require_tool("promtool")
    asyncio.run(create_topics(kafka.bootstrap, "traces", partitions=2))
    asyncio.run(produce_timed(kafka.bootstrap, 600))  # 10 hours of traces
    before = asyncio.run(commit_live_group(kafka.bootstrap))
    events, om = tmp_path / "events.jsonl", tmp_path / "backfill.om"
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "sidecar",
            "replay",
            "--bootstrap",
            kafka.bootstrap,
            "--topic",
            "traces",
            "--from",
            "2026-11-01T02:00Z",
            "--to",
            "2026-11-01T07:00Z",
            "--events",
            f"file:{events}",
            "--openmetrics",
            str(om),
            "--backfill-id",
            "t1",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    docs = [orjson.loads(line) for line in events.read_text().splitlines()]
    got = sorted(int(d["trace_id"][1:]) for d in docs)
    assert got == list(range(120, 420)), "exactly the traces stamped in [02:00, 07:00)"
    assert asyncio.run(committed(kafka.bootstrap, "live", "traces", 2)) == before
    assert "replayed 300 traces" in res.stderr

    data = tmp_path / "tsdb"
    blocks = subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(om), str(data)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert blocks.returncode == 0, blocks.stderr
    url = prometheus(data)
    at = T0 + 7 * 3600
    count = query(
        url,
        'sum by (app) (rag_sidecar_score_count{metric="groundedness_lexical",backfill="t1"})',
        at,
    )
    assert count == {"a": 150.0, "b": 150.0}
    mean = query(
        url,
        'sum(increase(rag_sidecar_score_sum{metric="answer_query_overlap"}[6h]))'
        ' / sum(increase(rag_sidecar_score_count{metric="answer_query_overlap"}[6h]))',
        at,
    )
    assert mean[""] == pytest.approx(docs[0]["scores"]["answer_query_overlap"])


def test_replay_by_offsets_to_a_topic(kafka: Broker, tmp_path: Path) -> None:
    from tests.support.kafka_io import read_all

    asyncio.run(create_topics(kafka.bootstrap, "traces", "rescored", partitions=2))
    asyncio.run(produce_timed(kafka.bootstrap, 100))
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "sidecar",
            "replay",
            "--bootstrap",
            kafka.bootstrap,
            "--topic",
            "traces",
            "--from-offset",
            "10",
            "--to-offset",
            "30",
            "--events",
            f"kafka://{kafka.bootstrap}/rescored",
            "--dead-letter",
            f"file:{tmp_path / 'dlq.jsonl'}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**__import__("os").environ, "RAG_SIDECAR_KAFKA__ENABLE_IDEMPOTENCE": "false"},
    )
    assert res.returncode == 0, res.stderr
    out = asyncio.run(read_all(kafka.bootstrap, "rescored", expect=40))
    assert len(out) == 40  # offsets 10..29 on each of 2 partitions
