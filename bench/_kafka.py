"""Kafka helpers for benchmarks: a CPU-pinned tansu broker, topics, bulk produce, process stats.

Self-contained (benchmarks do not import from tests/): the few lines that start tansu are
copied from tests/support/tansu.py. tansu comes from ``bash scripts/tools.sh tansu``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

ROOT = Path(__file__).resolve().parents[1]
TANSU = ROOT / ".tools" / "bin" / "tansu"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class BenchError(RuntimeError):
    """A benchmark precondition or wait failed; the message says what to do."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tansu_path() -> Path:
    """The tansu binary, or a clear error saying how to install it."""
    if not (TANSU.is_file() and os.access(TANSU, os.X_OK)):
        raise BenchError(
            f"tansu not found at {TANSU}: install it with `bash scripts/tools.sh tansu`"
        )
    return TANSU


def pinned(cmd: list[str], cpu: int | None) -> list[str]:
    """``cmd`` prefixed with ``taskset -c CPU`` (no prefix when ``cpu`` is None)."""
    if cpu is None:
        return cmd
    taskset = shutil.which("taskset")
    if taskset is None:
        raise BenchError("taskset not found (Debian package util-linux) but CPU pinning was asked")
    return [taskset, "-c", str(cpu), *cmd]


def pin_self(cpus: set[int]) -> None:
    """Pin every thread of this process (not only the calling one) to ``cpus``."""
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(ProcessLookupError):  # a thread that just ended
            os.sched_setaffinity(int(task.name), cpus)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads) so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def status_kib(pid: int, key: str) -> int:
    """A ``kB`` field of /proc/PID/status (VmHWM, VmRSS, ...)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise BenchError(f"{key} not in /proc/{pid}/status")


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout`` seconds; always reaps."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def tail(path: Path, chars: int = 2000) -> str:
    """The end of a log file (empty when it does not exist)."""
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


@dataclass
class Broker:
    """A running tansu broker."""

    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        stop_process(self.proc, 5.0)


def start_broker(log_dir: Path, cpu: int | None = None) -> Broker:
    """Start tansu (in-memory storage) on a free loopback port, pinned to ``cpu``; wait for it."""
    binary = tansu_path()
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    log = log_dir / f"tansu-{port}.log"
    with log.open("ab") as fh:
        proc = subprocess.Popen(
            pinned(
                [
                    str(binary),
                    "broker",
                    "--listener-url",
                    url,
                    "--advertised-listener-url",
                    url,
                    "--storage-engine",
                    "memory://tansu/",
                ],
                cpu,
            ),
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 10
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            break
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_process(proc)
            raise BenchError(f"tansu did not start: {tail(log)}")
        time.sleep(0.02)
    return Broker(port, proc, log)


async def create_topics(bootstrap: str, names: Sequence[str], partitions: int) -> None:
    """Create topics (replication 1) and wait until they are usable."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await asyncio.wait_for(admin.start(), 20)
    try:
        await asyncio.wait_for(admin.create_topics([NewTopic(n, partitions, 1) for n in names]), 20)
    finally:
        await admin.close()


def producer(bootstrap: str, *, linger_ms: int = 5) -> AIOKafkaProducer:
    """A producer configured like the sidecar's sinks (acks=all, 1 MiB batches), idempotence off.

    aiokafka's idempotent producer fails against tansu (see /work/shared/FACTS.md).
    """
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=False,
        linger_ms=linger_ms,
        max_batch_size=1 << 20,
        max_request_size=1 << 20,
        request_timeout_ms=30_000,
    )


async def produce(
    bootstrap: str, topic: str, values: Sequence[bytes], partitions: int, within_s: float
) -> None:
    """Send ``values`` round-robin over the partitions and wait for every acknowledgement."""
    prod = producer(bootstrap, linger_ms=20)
    await asyncio.wait_for(prod.start(), 20)
    try:

        async def send_all() -> None:
            futures = [
                await prod.send(topic, v, partition=i % partitions) for i, v in enumerate(values)
            ]
            await asyncio.gather(*futures)

        await asyncio.wait_for(send_all(), within_s)
    finally:
        await prod.stop()
