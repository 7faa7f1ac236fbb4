"""JSON Lines from a file or stdin, optionally tailed (``--follow``).

Reads happen in a daemon thread so a slow disk or an idle stdin never blocks
the event loop, nor the exit (a pool's worker stuck reading an idle pipe would be
joined at interpreter exit: SIGTERM would hang past the drain timeout). Stdin is
read from its descriptor (:class:`_FdLines`), not ``sys.stdin``: a daemon thread
inside a buffered reader's lock aborts the interpreter at exit. Each
batch is acknowledged through ``Batch.done``; the source is :meth:`drained` once
it hit the end of its input (never, when following) and every batch it emitted
is done. Blank lines are skipped; a line longer than the
record limit is still delivered (and dead-lettered as ``too_large`` downstream).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import IO, TypeVar

from ..config import FileSpec
from ..errors import ConfigError
from ..stages import Batch, Emit, Record

log = logging.getLogger(__name__)
T = TypeVar("T")


def _deliver(fut: asyncio.Future[T], value: T | None, exc: BaseException | None) -> None:
    if fut.done():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(value)  # type: ignore[arg-type]


class _FdLines:
    """Lines read straight from a file descriptor (no lock a daemon thread could hold)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._buf = bytearray()
        self._eof = False

    def readline(self) -> bytes:
        """The next line with its newline; the unterminated rest at the end; b"" after."""
        while True:
            i = self._buf.find(b"\n")
            if i >= 0:
                line = bytes(self._buf[: i + 1])
                del self._buf[: i + 1]
                return line
            if self._eof:
                line = bytes(self._buf)
                self._buf.clear()
                return line
            chunk = os.read(self._fd, 1 << 16)
            if chunk:
                self._buf += chunk
            else:
                self._eof = True


async def _in_daemon_thread(fn: Callable[[], T]) -> T:
    """``fn()`` in a daemon thread (one per call: reads are per batch)."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[T] = loop.create_future()

    def run() -> None:
        value, error = None, None
        try:
            value = fn()
        except BaseException as exc:  # handed to the awaiting task
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(_deliver, fut, value, error)

    threading.Thread(target=run, name="source-read", daemon=True).start()
    return await fut


class FileSource:
    """Delivers the lines of a JSONL file (or stdin) as batches of records."""

    def __init__(
        self,
        spec: FileSpec,
        *,
        batch_size: int = 256,
        follow: bool = False,
        poll_interval: float = 0.2,
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self.batch_size = batch_size
        self.follow = follow and spec.path is not None
        self.poll_interval = poll_interval
        self.lines_read = 0
        self.lines_done = 0
        self._fh: IO[bytes] | _FdLines | None = None
        self._task: asyncio.Task[None] | None = None
        self._pending = 0
        self._eof = asyncio.Event()
        self._all_done = asyncio.Event()
        self._error: BaseException | None = None
        self._label = "stdin" if spec.path is None else str(spec.path)

    async def start(self, emit: Emit) -> None:
        """Open the input and start the reading task."""
        if self.spec.path is None:
            self._fh = _FdLines(sys.stdin.fileno())
        else:
            try:
                self._fh = self.spec.path.open("rb")
            except OSError as exc:
                raise ConfigError(f"cannot read source {self.spec.path}: {exc.strerror}") from None
        self._task = asyncio.create_task(self._run(emit), name=f"source:{self._label}")

    def _read_batch(self) -> list[bytes]:
        assert self._fh is not None
        out: list[bytes] = []
        readline = self._fh.readline
        while len(out) < self.batch_size:
            line = readline()
            if not line:
                break
            if not line.endswith(b"\n") and self.follow:
                # A partial line being written: rewind and wait for the rest.
                assert not isinstance(self._fh, _FdLines)  # stdin is never followed
                self._fh.seek(-len(line), 1)
                break
            out.append(line)
        return out

    def _rotated(self) -> bool:
        """True when the followed file was truncated or replaced."""
        assert self._fh is not None and not isinstance(self._fh, _FdLines)
        assert self.spec.path is not None
        try:
            st = self.spec.path.stat()
        except FileNotFoundError:
            return False
        cur = os.fstat(self._fh.fileno())
        return st.st_ino != cur.st_ino or st.st_size < self._fh.tell()

    async def _run(self, emit: Emit) -> None:
        lineno = 0
        try:
            while True:
                lines = await _in_daemon_thread(self._read_batch)
                if not lines:
                    if not self.follow:
                        break
                    if await _in_daemon_thread(self._rotated):
                        log.info("followed file rotated; reopening", extra={"fields": {}})
                        assert self.spec.path is not None
                        assert self._fh is not None and not isinstance(self._fh, _FdLines)
                        self._fh.close()
                        self._fh = self.spec.path.open("rb")
                        lineno = 0
                    await asyncio.sleep(self.poll_interval)
                    continue
                records = []
                for line in lines:
                    lineno += 1
                    stripped = line.strip()
                    if stripped:
                        records.append(Record(stripped, f"{self._label}:{lineno}"))
                self.lines_read += len(records)
                if records:
                    self._pending += 1
                    await emit(Batch(self.name, records, self._make_done(len(records))))
        except Exception as exc:  # not the end of the input: drained() must say so
            self._error = exc
            log.error(
                "source read failed",
                extra={"fields": {"source": self._label, "line": lineno}},
                exc_info=exc,
            )
        finally:
            self._eof.set()
            self._check_all_done()

    def _make_done(self, n: int) -> Callable[[bool], None]:
        def done(ok: bool) -> None:
            self._pending -= 1
            if ok:
                self.lines_done += n
            self._check_all_done()

        return done

    def _check_all_done(self) -> None:
        if self._eof.is_set() and self._pending == 0:
            self._all_done.set()

    async def drained(self) -> None:
        """Return once the input is exhausted and every batch acknowledged.

        Raises the error that stopped reading early (the pipeline then fails)."""
        await self._all_done.wait()
        if self._error is not None:
            raise self._error

    async def aclose(self) -> None:
        """Stop reading (batches in flight can still complete)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._fh is not None and not isinstance(self._fh, _FdLines):
            self._fh.close()
