"""No loss under kill -9: the real CLI is killed 20 times while 50,000 traces stream in."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import orjson
import pytest

from tests.conftest import free_port, make_trace
from tests.support.kafka_io import committed, create_topics, produce, read_all
from tests.support.tansu import Broker

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
TOTAL = 50_000
PARTITIONS = 3


def start_sidecar(broker: Broker, port: int, log: Path) -> subprocess.Popen[bytes]:
    b = broker.bootstrap
    env = {
        **os.environ,
        "RAG_SIDECAR_KAFKA__ENABLE_IDEMPOTENCE": "false",
        "RAG_SIDECAR_KAFKA__SESSION_TIMEOUT_MS": "6000",
        "RAG_SIDECAR_KAFKA__HEARTBEAT_INTERVAL_MS": "500",
        "RAG_SIDECAR_KAFKA__COMMIT_INTERVAL_S": "0.5",
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sidecar",
            "run",
            "--source",
            f"kafka://{b}/traces?group=kill9",
            "--events",
            f"kafka://{b}/events",
            "--dead-letter",
            f"kafka://{b}/dlq",
            "--metrics-host",
            "127.0.0.1",
            "--metrics-port",
            str(port),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
        env=env,
    )


def wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "sidecar exited early"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=0.5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError("sidecar not ready")


def test_kill_dash_9_twenty_times_loses_nothing(kafka: Broker, tmp_path: Path) -> None:
    asyncio.run(create_topics(kafka.bootstrap, "traces", "events", "dlq", partitions=PARTITIONS))
    produced = threading.Event()

    def stream() -> None:  # 50,000 traces over ~40 s, in the background
        async def run() -> None:
            for start in range(0, TOTAL, 1250):
                lines = [
                    orjson.dumps(make_trace(trace_id=f"s{i}")) for i in range(start, start + 1250)
                ]
                await produce(kafka.bootstrap, "traces", lines)
                await asyncio.sleep(1.0)

        asyncio.run(run())
        produced.set()

    threading.Thread(target=stream, daemon=True).start()
    rng = random.Random(20261125)
    log = tmp_path / "sidecar.log"
    for _ in range(20):
        port = free_port()
        proc = start_sidecar(kafka, port, log)
        try:
            wait_ready(port, proc)
            time.sleep(rng.uniform(0.2, 4.0))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
    assert produced.wait(120), "producer did not finish"

    port = free_port()
    proc = start_sidecar(kafka, port, log)
    try:
        wait_ready(port, proc)
        deadline = time.monotonic() + 180
        while True:
            offsets = asyncio.run(committed(kafka.bootstrap, "kill9", "traces", PARTITIONS))
            if sum(o or 0 for o in offsets.values()) >= TOTAL:
                break
            assert time.monotonic() < deadline, f"final run stuck at {offsets}"
            time.sleep(1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()

    events = asyncio.run(read_all(kafka.bootstrap, "events", expect=TOTAL, timeout=120))
    docs = [orjson.loads(m.value) for m in events]
    per_trace = Counter(d["trace_id"] for d in docs)
    assert set(per_trace) == {f"s{i}" for i in range(TOTAL)}, "every trace has an event"
    ids_by_trace: dict[str, set[str]] = {}
    for d in docs:
        ids_by_trace.setdefault(d["trace_id"], set()).add(d["event_id"])
    assert all(len(v) == 1 for v in ids_by_trace.values()), "duplicates share one event_id"
    dupes = len(docs) - len(per_trace)
    print(
        f"\nkill -9 x20, {TOTAL} traces: {len(docs)} events, {dupes} duplicates "
        f"({100 * dupes / TOTAL:.2f}%), max per trace {max(per_trace.values())}"
    )
