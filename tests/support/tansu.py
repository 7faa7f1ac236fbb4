"""A real Kafka-protocol broker for tests: tansu (in-memory storage), started per test or module."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


def tansu_path() -> str:
    """The tansu binary from scripts/tools.sh; skip (fail under scripts/test) if absent."""
    path = ROOT / ".tools" / "bin" / "tansu"
    if not path.is_file():
        msg = "tansu not installed (scripts/tools.sh tansu)"
        if os.environ.get("RAG_SIDECAR_REQUIRE_TOOLS") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return str(path)


@dataclass
class Broker:
    """A running tansu broker."""

    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_broker(
    log_dir: Path, port: int | None = None, advertised_port: int | None = None
) -> Broker:
    """Start tansu on a free loopback port and wait until it accepts connections.

    ``advertised_port`` makes clients reconnect through another address (a proxy).
    """
    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    advertised = f"tcp://127.0.0.1:{advertised_port or port}"
    log = log_dir / f"tansu-{port}.log"
    fh = log.open("ab")
    proc = subprocess.Popen(
        [
            tansu_path(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            advertised,
            "--storage-engine",
            "memory://tansu/",
        ],
        stdout=fh,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 10
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            break
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"tansu did not start: {log.read_text()[-2000:]}")
        time.sleep(0.02)
    return Broker(port, proc, log)


@contextlib.contextmanager
def running_broker(log_dir: Path) -> Iterator[Broker]:
    broker = start_broker(log_dir)
    try:
        yield broker
    finally:
        broker.stop()
