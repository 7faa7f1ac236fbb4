from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port, require_tool
from tests.support.tansu import Broker, running_broker


@pytest.fixture
def kafka(tmp_path: Path) -> Iterator[Broker]:
    """A fresh tansu broker for one test."""
    with running_broker(tmp_path) as broker:
        yield broker


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Callable[[Path], str]]:
    """Starts a real Prometheus on a TSDB directory and returns its URL; stops it after."""
    binary = require_tool("prometheus")
    procs: list[subprocess.Popen[bytes]] = []

    def start(data: Path) -> str:
        url = f"http://127.0.0.1:{free_port()}"
        config, log = tmp_path / "prometheus.yml", tmp_path / "prometheus.log"
        config.write_text("global:\n  scrape_interval: 1h\n")
        args = [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={data}",
            "--storage.tsdb.retention.time=100y",  # retention must not drop the history
            f"--web.listen-address={url.removeprefix('http://')}",
        ]
        with log.open("wb") as err:
            procs.append(subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=err))
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    return url
            except httpx.TransportError:
                pass
            assert procs[-1].poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=10)
