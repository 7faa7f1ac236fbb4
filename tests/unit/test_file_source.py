from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sidecar.config import FileSpec
from sidecar.sources.file import FileSource
from sidecar.stages import Batch


async def collect(src: FileSource, until: int, timeout: float = 5.0) -> list[bytes]:
    got: list[bytes] = []

    async def emit(batch: Batch) -> None:
        got.extend(r.value for r in batch.records)
        batch.done(True)

    await src.start(emit)
    async with asyncio.timeout(timeout):
        while len(got) < until:
            await asyncio.sleep(0.01)
    return got


async def test_reads_lines_skips_blanks_and_drains(tmp_path: Path) -> None:
    f = tmp_path / "in.jsonl"
    f.write_bytes(b'{"a":1}\n\n  \n{"b":2}\n{"c":3}')  # no trailing newline on the last line
    src = FileSource(FileSpec(f, str(f)), batch_size=2)
    got = await collect(src, 3)
    await asyncio.wait_for(src.drained(), 2)
    assert got == [b'{"a":1}', b'{"b":2}', b'{"c":3}']
    assert src.lines_done == 3
    await src.aclose()


async def test_follow_tails_appends_partial_lines_and_rotation(tmp_path: Path) -> None:
    f = tmp_path / "live.jsonl"
    f.write_bytes(b"1\n")
    src = FileSource(FileSpec(f, str(f)), follow=True, poll_interval=0.02)
    got: list[bytes] = []

    async def emit(batch: Batch) -> None:
        got.extend(r.value for r in batch.records)
        batch.done(True)

    await src.start(emit)

    async def wait_for(n: int) -> None:
        async with asyncio.timeout(5):
            while len(got) < n:
                await asyncio.sleep(0.01)

    await wait_for(1)
    with f.open("ab") as fh:
        fh.write(b"2\n3")  # "3" is still being written
        fh.flush()
        await wait_for(2)
        await asyncio.sleep(0.1)
        assert got == [b"1", b"2"], "a partial line waits for its newline"
        fh.write(b"3\n")
    await wait_for(3)
    assert got[2] == b"33"
    f.rename(tmp_path / "live.jsonl.1")  # rotate: a new file appears under the old name
    f.write_bytes(b"4\n")
    await wait_for(4)
    assert got == [b"1", b"2", b"33", b"4"]
    assert not src._all_done.is_set(), "a followed file never drains"
    await src.aclose()


async def test_a_read_error_fails_drained_instead_of_passing_for_the_end(
    tmp_path: Path,
) -> None:
    """An I/O error mid-file (EIO, a vanished NFS mount) must not look like the end of the
    input: the run would exit 0 with the rest of the file never scored."""
    f = tmp_path / "in.jsonl"
    f.write_bytes(b"1\n2\n3\n")
    src = FileSource(FileSpec(f, str(f)), batch_size=1)
    real, calls = src._read_batch, 0

    def flaky() -> list[bytes]:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise OSError(5, "Input/output error")
        return real()

    src._read_batch = flaky  # type: ignore[method-assign]
    got = await collect(src, 1)
    try:
        with pytest.raises(OSError, match="Input/output error"):
            await asyncio.wait_for(src.drained(), 2)
    finally:
        await src.aclose()
    assert got == [b"1"]
