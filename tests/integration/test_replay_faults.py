"""Replay under faults and awkward ranges, against a real broker (tansu).

A replay is a batch job: it must either read its whole range and exit 0, or fail
loudly and leave no output that looks complete.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from tests.conftest import make_trace
from tests.support.kafka_io import create_topics
from tests.support.tansu import Broker

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
T0 = 1_793_491_200  # 2026-11-01T00:00:00Z
ENV = {**os.environ, "RAG_SIDECAR_KAFKA__ENABLE_IDEMPOTENCE": "false"}


async def produce(
    bootstrap: str,
    items: Sequence[tuple[int, dict[str, Any], int]],
    topic: str = "traces",
    **kw: Any,
) -> None:
    """(partition, trace document, record timestamp in seconds) each."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", **kw)
    await producer.start()
    try:
        futs = [
            await producer.send(topic, orjson.dumps(doc), partition=p, timestamp_ms=ts * 1000)
            for p, doc, ts in items
        ]
        await asyncio.gather(*futs)
    finally:
        await producer.stop()


def replay_cmd(bootstrap: str, tmp: Path, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "sidecar",
        "replay",
        "--bootstrap",
        bootstrap,
        "--topic",
        "traces",
        "--dead-letter",
        f"file:{tmp / 'dlq.jsonl'}",
        *args,
    ]


def run(cmd: list[str], timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env={**ENV, **env}
    )


def trace_ids(path: Path) -> list[str]:
    return [orjson.loads(line)["trace_id"] for line in path.read_text().splitlines()]


def start_and_wait_for_output(cmd: list[str], events: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.PIPE, text=True, env=ENV)
    deadline = time.monotonic() + 60
    while not (events.exists() and events.stat().st_size > 0):
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline, "replay wrote nothing"
        time.sleep(0.05)
    return proc


def big_topic(kafka: Broker, n: int = 6000) -> int:
    """n traces of ~4 KB, 1 s apart over 2 partitions: long enough to interrupt a replay."""
    asyncio.run(create_topics(kafka.bootstrap, "traces", partitions=2))
    pad = "x" * 3000
    docs = [
        (i % 2, make_trace(trace_id=f"t{i}", timestamp=T0 + i, pad=pad), T0 + i) for i in range(n)
    ]
    asyncio.run(produce(kafka.bootstrap, docs))
    return n


def test_partitions_are_merged_in_time_order(kafka: Broker, tmp_path: Path) -> None:
    """Traces 1 s apart round-robin over 4 partitions: tansu hands out a whole partition
    per fetch, so without the merge 3/4 of the samples land minutes late."""
    n, parts = 4000, 4
    asyncio.run(create_topics(kafka.bootstrap, "traces", partitions=parts))
    docs = [(i % parts, make_trace(trace_id=f"t{i}", timestamp=T0 + i), T0 + i) for i in range(n)]
    asyncio.run(produce(kafka.bootstrap, docs))
    om, events = tmp_path / "bf.om", tmp_path / "ev.jsonl"
    args = ["--from", str(T0), "--to", str(T0 + n), "--openmetrics", str(om)]
    res = run(replay_cmd(kafka.bootstrap, tmp_path, *args, "--events", f"file:{events}"))
    assert res.returncode == 0, res.stderr
    assert "(late 0, skipped 0)" in res.stderr
    stamps = [orjson.loads(line)["timestamp"] for line in events.read_text().splitlines()]
    assert len(stamps) == n
    assert stamps == sorted(stamps)  # the merge: events in trace time across partitions
    for line in om.read_text().splitlines():
        m = re.match(r"rag_sidecar_traces_total\{.*\} (\S+) (\S+)$", line)
        if m:  # the cumulative count at each step equals the traces stamped before it
            value, at = float(m[1]), float(m[2])
            assert value == min(max(at - T0, 0), n), line


def test_a_broker_pause_longer_than_idle_is_waited_out(kafka: Broker, tmp_path: Path) -> None:
    n = big_topic(kafka)
    events, om = tmp_path / "ev.jsonl", tmp_path / "bf.om"
    args = ["--from", str(T0), "--to", str(T0 + n), "--openmetrics", str(om)]
    proc = start_and_wait_for_output(
        replay_cmd(kafka.bootstrap, tmp_path, *args, "--events", f"file:{events}"), events
    )
    os.kill(kafka.proc.pid, signal.SIGSTOP)
    try:
        time.sleep(4)  # twice the 2 s idle time that used to end the replay here
    finally:
        os.kill(kafka.proc.pid, signal.SIGCONT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert sorted(trace_ids(events)) == sorted(f"t{i}" for i in range(n))
    assert om.read_text().endswith("# EOF\n")


def test_a_broker_pause_past_the_stall_timeout_fails_the_replay(
    kafka: Broker, tmp_path: Path
) -> None:
    n = big_topic(kafka)
    events, om = tmp_path / "ev.jsonl", tmp_path / "bf.om"
    om.write_text("an earlier, complete backfill\n")
    args = ["--from", str(T0), "--to", str(T0 + n), "--openmetrics", str(om)]
    args += ["--events", f"file:{events}", "--stall-timeout", "3"]
    proc = start_and_wait_for_output(replay_cmd(kafka.bootstrap, tmp_path, *args), events)
    os.kill(kafka.proc.pid, signal.SIGSTOP)
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        os.kill(kafka.proc.pid, signal.SIGCONT)
    assert proc.returncode == 1, err
    assert "still below its end" in err and "the output is incomplete" in err
    assert om.read_text() == "an earlier, complete backfill\n"
    assert (tmp_path / "bf.om.partial").read_text().endswith("# EOF\n")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".bf.om.")] == []


def test_sigterm_exits_143_and_keeps_the_earlier_file(kafka: Broker, tmp_path: Path) -> None:
    n = big_topic(kafka)
    events, om = tmp_path / "ev.jsonl", tmp_path / "bf.om"
    om.write_text("an earlier, complete backfill\n")
    args = ["--from", str(T0), "--to", str(T0 + n), "--openmetrics", str(om)]
    proc = start_and_wait_for_output(
        replay_cmd(kafka.bootstrap, tmp_path, *args, "--events", f"file:{events}"), events
    )
    os.kill(kafka.proc.pid, signal.SIGSTOP)  # hold the replay mid-range
    try:
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        os.kill(kafka.proc.pid, signal.SIGCONT)
    assert proc.returncode == 143, err
    assert "stopped by SIGTERM" in err
    assert om.read_text() == "an earlier, complete backfill\n"
    assert (tmp_path / "bf.om.partial").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".bf.om.")] == []
    assert all(line.endswith("}") for line in events.read_text().splitlines())


def test_a_future_end_stops_at_the_start_time_on_a_live_topic(
    kafka: Broker, tmp_path: Path
) -> None:
    asyncio.run(create_topics(kafka.bootstrap, "traces", partitions=1))
    now = int(time.time())
    asyncio.run(
        produce(
            kafka.bootstrap, [(0, make_trace(trace_id=f"old{i}"), now - 60 + i) for i in range(20)]
        )
    )
    events = tmp_path / "ev.jsonl"
    args = ["--from", str(now - 3600), "--to", str(now + 86_400), "--events", f"file:{events}"]
    proc = subprocess.Popen(
        replay_cmd(kafka.bootstrap, tmp_path, *args),
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )

    assert proc.stderr is not None
    started = []
    for line in proc.stderr:  # the range's end (its start time) is fixed by now
        started.append(line)
        if "pipeline started" in line:
            break

    async def keep_producing() -> None:  # a live service keeps writing traces
        i = 0
        while proc.poll() is None and i < 400:
            live = make_trace(trace_id=f"live{i}")
            await produce(kafka.bootstrap, [(0, live, int(time.time()) + 2)])
            await asyncio.sleep(0.05)
            i += 1

    asyncio.run(keep_producing())
    _, err = proc.communicate(timeout=30)
    err = "".join(started) + err
    assert proc.returncode == 0, err
    assert sorted(trace_ids(events)) == sorted(f"old{i}" for i in range(20))


def test_a_trace_without_timestamp_takes_the_record_time(kafka: Broker, tmp_path: Path) -> None:
    asyncio.run(create_topics(kafka.bootstrap, "traces", partitions=1))
    doc = make_trace(trace_id="no-ts")
    del doc["timestamp"]
    asyncio.run(produce(kafka.bootstrap, [(0, doc, T0 + 30)]))
    events = tmp_path / "ev.jsonl"
    args = ["--from", str(T0), "--to", str(T0 + 60), "--events", f"file:{events}"]
    res = run(replay_cmd(kafka.bootstrap, tmp_path, *args))
    assert res.returncode == 0, res.stderr
    (event,) = [orjson.loads(line) for line in events.read_text().splitlines()]
    assert event["timestamp"] == T0 + 30


def test_a_sink_failing_at_start_leaves_nothing_behind(kafka: Broker, tmp_path: Path) -> None:
    asyncio.run(create_topics(kafka.bootstrap, "traces", partitions=1))
    asyncio.run(produce(kafka.bootstrap, [(0, make_trace(trace_id="a"), T0)]))
    out = tmp_path / "out"
    out.mkdir()
    cmd = replay_cmd(kafka.bootstrap, out, "--from", str(T0), "--openmetrics", str(out / "bf.om"))
    cmd[cmd.index("--dead-letter") + 1] = "kafka://127.0.0.1:9/dlq"  # nobody listens there
    res = run(cmd)
    assert res.returncode == 1, res.stderr
    assert "Unclosed AIOKafkaConsumer" not in res.stderr
    assert list(out.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2026-11-02T00:00Z", "--to", "2026-11-01T00:00Z"], "later than --from"),
        (["--from-offset", "30", "--to-offset", "10"], "greater than --from-offset"),
        (["--from", "1793491200000"], "epoch milliseconds"),
        (["--from", "2026-11-01T00:00Z", "--step", "0.0001"], "--step"),
        (["--from", "2026-11-01T00:00Z", "--step", "3600"], "--step"),
    ],
)
def test_ranges_that_can_only_be_mistakes_are_refused(
    tmp_path: Path, args: list[str], message: str
) -> None:
    res = run(replay_cmd("127.0.0.1:9", tmp_path, *args, "--events", "-"))
    assert res.returncode == 2, res.stderr
    assert message in res.stderr


ONE_BATCH = {"linger_ms": 200, "max_batch_size": 1 << 20}  # tansu then reports end = 1


def small(trace_id: str, ts: float) -> dict[str, Any]:
    return {"trace_id": trace_id, "query": "q", "answer": "a", "timestamp": ts}


def test_an_under_reported_end_neither_reorders_nor_loses_a_tail(
    kafka: Broker, tmp_path: Path
) -> None:
    """tansu reports a partition's end as its last batch's base offset + 1: a partition
    past that is not done (nor out of the merge) until it goes quiet unpaused."""
    n = 600
    asyncio.run(create_topics(kafka.bootstrap, "traces", partitions=2))
    items = [(p, small(f"t{2 * k + p}", T0 + 2 * k + p), T0 + 2 * k + p) for p in (0, 1)
             for k in range(n)]  # fmt: skip
    asyncio.run(produce(kafka.bootstrap, items, **ONE_BATCH))
    events = tmp_path / "ev.jsonl"
    args = ["--from", str(T0), "--to", str(T0 + 2 * n), "--events", f"file:{events}"]
    res = run(replay_cmd(kafka.bootstrap, tmp_path, *args))
    assert res.returncode == 0, res.stderr
    stamps = [orjson.loads(line)["timestamp"] for line in events.read_text().splitlines()]
    assert len(stamps) == 2 * n and stamps == sorted(stamps)


def test_a_paused_partition_is_not_taken_as_done_during_a_broker_pause(
    kafka: Broker, tmp_path: Path
) -> None:
    """Partition 0 runs ahead in time and is paused (its prefetched tail dropped by
    aiokafka) while partition 1 catches up; a broker pause then must not end it."""
    asyncio.run(create_topics(kafka.bootstrap, "traces", partitions=2))
    ahead = [(0, small(f"a{k}", T0 + 5000 + k), T0 + 5000 + k) for k in range(600)]
    asyncio.run(produce(kafka.bootstrap, ahead, **ONE_BATCH))
    behind = [(1, small(f"b{k}", T0 + k // 10), T0 + k // 10) for k in range(20000)]
    asyncio.run(produce(kafka.bootstrap, behind))
    events = tmp_path / "ev.jsonl"
    args = ["--from", str(T0), "--to", str(T0 + 10000), "--events", f"file:{events}"]
    proc = start_and_wait_for_output(replay_cmd(kafka.bootstrap, tmp_path, *args), events)
    os.kill(kafka.proc.pid, signal.SIGSTOP)
    try:
        time.sleep(4)  # twice idle_s
    finally:
        os.kill(kafka.proc.pid, signal.SIGCONT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    ids = trace_ids(events)
    assert len(ids) == 20600 and sum(i.startswith("a") for i in ids) == 600


def test_a_failure_writing_the_openmetrics_file_fails_the_replay(
    kafka: Broker, tmp_path: Path
) -> None:
    asyncio.run(create_topics(kafka.bootstrap, "traces", partitions=1))
    asyncio.run(produce(kafka.bootstrap, [(0, small(f"t{i}", T0 + i), T0 + i) for i in range(50)]))
    om = tmp_path / "bf.om"
    om.mkdir()
    (om / "x").write_text("the final rename cannot replace a non-empty directory")
    res = run(replay_cmd(kafka.bootstrap, tmp_path, "--from", str(T0), "--openmetrics", str(om)))
    assert res.returncode == 1, res.stderr
    assert "replay failed" in res.stderr and "wrote" not in res.stderr


def test_a_live_drop_policy_does_not_drop_in_a_replay(kafka: Broker, tmp_path: Path) -> None:
    """pipeline.overflow: drop sheds load in a live sidecar; a replay must read it all."""
    asyncio.run(create_topics(kafka.bootstrap, "traces", partitions=2))
    items = [(i % 2, small(f"t{i}", T0 + i), T0 + i) for i in range(3000)]
    asyncio.run(produce(kafka.bootstrap, items))
    events = tmp_path / "ev.jsonl"
    args = ["--from", str(T0), "--to", str(T0 + 3000), "--events", f"file:{events}"]
    env = {"RAG_SIDECAR_PIPELINE__OVERFLOW": "drop", "RAG_SIDECAR_PIPELINE__QUEUE_SIZE": "1"}
    res = run(replay_cmd(kafka.bootstrap, tmp_path, *args), **env)
    assert res.returncode == 0, res.stderr
    assert len(set(trace_ids(events))) == 3000


def test_one_record_stamped_in_the_future_does_not_end_its_partition(
    kafka: Broker, tmp_path: Path
) -> None:
    """A producer's clock a day ahead: that record is skipped, the rest are replayed."""
    asyncio.run(create_topics(kafka.bootstrap, "traces", partitions=1))
    now = int(time.time())
    items = [(0, small(f"t{i}", now - 600 + i), now - 600 + i) for i in range(100)]
    items.insert(50, (0, small("ahead", now + 86_400), now + 86_400))
    asyncio.run(produce(kafka.bootstrap, items))
    events = tmp_path / "ev.jsonl"
    args = ["--from", str(now - 3600), "--to", str(now - 1), "--events", f"file:{events}"]
    res = run(replay_cmd(kafka.bootstrap, tmp_path, *args))
    assert res.returncode == 0, res.stderr
    assert sorted(trace_ids(events)) == sorted(f"t{i}" for i in range(100))


def test_dead_letters_count_as_invalid_in_the_openmetrics_file(
    kafka: Broker, tmp_path: Path
) -> None:
    """The live sidecar counts them in rag_sidecar_traces_total{outcome="invalid"}; a backfill
    left them out, so an invalid-rate panel read 0 over the replayed history."""
    asyncio.run(create_topics(kafka.bootstrap, "traces", partitions=1))
    good = [(0, small(f"t{i}", T0 + i), T0 + i) for i in range(5)]
    asyncio.run(produce(kafka.bootstrap, good))

    async def bad() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
        await producer.start()
        try:
            for i in range(2):
                await producer.send_and_wait(
                    "traces", b"not json", timestamp_ms=(T0 + 10 + i) * 1000
                )
        finally:
            await producer.stop()

    asyncio.run(bad())
    om = tmp_path / "bf.om"
    res = run(replay_cmd(kafka.bootstrap, tmp_path, "--from", str(T0), "--to", str(T0 + 60),
                         "--openmetrics", str(om)))  # fmt: skip
    assert res.returncode == 0, res.stderr
    samples = re.findall(
        r'rag_sidecar_traces_total\{source="replay",outcome="(\w+)",backfill="[^"]+"\} (\d+) (\d+)',
        om.read_text(),
    )
    last = {outcome: int(v) for outcome, v, _ in samples}  # file order: time ascending
    assert last == {"scored": 5, "invalid": 2}
    assert len((tmp_path / "dlq.jsonl").read_text().splitlines()) == 2
