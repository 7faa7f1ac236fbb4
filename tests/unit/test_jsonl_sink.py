"""The JSON Lines sinks: whole lines only, even when a write fails halfway."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import IO, Any

import orjson
import pytest

from sidecar.app import build_engine
from sidecar.config import FileSpec, Settings
from sidecar.errors import RetryableError
from sidecar.sinks.jsonl import JsonlEventSink
from sidecar.stages import Record, Result
from tests.conftest import make_trace


class _FullDisk:
    """A file whose first write stores half the bytes, then fails with ENOSPC."""

    def __init__(self, real: IO[bytes]) -> None:
        self.real = real
        self.full = True

    def write(self, data: bytes) -> int:
        if not self.full:
            return self.real.write(data)
        self.full = False
        self.real.write(data[: len(data) // 2])
        self.real.flush()
        raise OSError(errno.ENOSPC, "No space left on device")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def _results(n: int) -> list[Result]:
    engine = build_engine(Settings())
    out = []
    for i in range(n):
        r = engine.process(Record(orjson.dumps(make_trace(trace_id=f"t{i}")), "x"), "file")
        assert isinstance(r, Result)
        out.append(r)
    return out


async def test_a_write_retried_after_a_full_disk_leaves_no_torn_line(tmp_path: Path) -> None:
    """The pipeline retries ENOSPC with the same batch: the half written before the error
    must not stay in front of it (one unparseable line for every reader of the file)."""
    path = tmp_path / "events.jsonl"
    sink = JsonlEventSink(FileSpec(path, str(path)))
    await sink.start()
    first, batch = _results(1), _results(3)
    await sink.write(first)
    assert sink._file._fh is not None
    sink._file._fh = _FullDisk(sink._file._fh)  # type: ignore[assignment]
    with pytest.raises(RetryableError):
        await sink.write(batch)
    await sink.write(batch)  # the pipeline's retry
    await sink.aclose()
    lines = path.read_bytes().splitlines()
    assert [orjson.loads(line)["trace_id"] for line in lines] == ["t0", "t0", "t1", "t2"]
    assert sink.written == 4
