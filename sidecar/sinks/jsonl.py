"""JSON Lines sinks: scored events and dead letters to a file or stdout.

Each batch is written and flushed to the OS before :meth:`write` returns, so an
acknowledged batch survives a crash of the sidecar (``fsync`` on ``flush`` and
``aclose`` also covers a crash of the machine). Dead-letter files are created on
the first letter, so a clean run leaves none behind.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Sequence
from typing import IO, Literal

import orjson

from ..config import FileSpec
from ..errors import PermanentError, RetryableError
from ..stages import DeadLetter, Result


class _JsonlFile:
    def __init__(self, spec: FileSpec, mode: Literal["append", "truncate"]) -> None:
        self.spec = spec
        self._mode = "ab" if mode == "append" else "wb"
        self._fh: IO[bytes] | None = None
        self.lines = 0

    def _open(self) -> IO[bytes]:
        if self._fh is None:
            if self.spec.path is None:
                self._fh = sys.stdout.buffer
            else:
                try:
                    self.spec.path.parent.mkdir(parents=True, exist_ok=True)
                    self._fh = self.spec.path.open(self._mode)
                except OSError as exc:
                    raise PermanentError(f"cannot open {self.spec.path}: {exc.strerror}") from exc
        return self._fh

    def write(self, payload: bytes, count: int) -> None:
        fh = self._open()
        start = fh.tell() if self.spec.path is not None else 0
        try:
            fh.write(payload)
            fh.flush()
        except OSError as exc:
            # A full disk may clear; a closed stdout or bad descriptor will not.
            if exc.errno in (28, 122):  # ENOSPC, EDQUOT
                self._rewind(start)
                raise RetryableError(f"{self.spec.uri}: {exc.strerror}") from exc
            raise PermanentError(f"{self.spec.uri}: {exc.strerror}") from exc
        self.lines += count

    def _rewind(self, start: int) -> None:
        """Cut off what a failed write left (a torn line in front of its retry): the
        buffered rest is dropped with the handle, the file truncated to ``start``."""
        if self.spec.path is None or self._fh is None:
            return  # stdout: nothing to cut
        fh, self._fh = self._fh, None  # reopened by the retry
        with contextlib.suppress(OSError):
            fh.close()  # its flush may fail again: the descriptor is closed either way
        with contextlib.suppress(OSError):
            os.truncate(self.spec.path, start)

    def sync(self) -> None:
        if self._fh is not None and self.spec.path is not None:
            self._fh.flush()
            os.fsync(self._fh.fileno())

    def close(self) -> None:
        if self._fh is not None:
            self.sync()
            if self.spec.path is not None:
                self._fh.close()
            else:
                self._fh.flush()
            self._fh = None


class JsonlEventSink:
    """Writes one scored event per line."""

    def __init__(self, spec: FileSpec, *, mode: Literal["append", "truncate"] = "append") -> None:
        self.name = "jsonl"
        self._file = _JsonlFile(spec, mode)

    @property
    def written(self) -> int:
        """Events written so far."""
        return self._file.lines

    async def start(self) -> None:
        """Open the file now so a bad path fails at start."""
        self._file._open()

    async def write(self, results: Sequence[Result]) -> None:
        """Append a batch of events."""
        if results:
            dumps = orjson.dumps
            payload = b"".join([dumps(r.event) + b"\n" for r in results])
            self._file.write(payload, len(results))

    async def flush(self) -> None:
        """fsync the file."""
        self._file.sync()

    async def aclose(self) -> None:
        """Flush and close."""
        self._file.close()


class JsonlDeadLetterSink:
    """Writes one dead letter per line: reason, detail, origin and the raw record."""

    def __init__(self, spec: FileSpec) -> None:
        self.name = "jsonl"
        self._file = _JsonlFile(spec, "append")

    @property
    def written(self) -> int:
        """Dead letters written so far."""
        return self._file.lines

    async def start(self) -> None:
        """Nothing to open until the first letter arrives."""

    async def write(self, letters: Sequence[DeadLetter]) -> None:
        """Append a batch of dead letters."""
        if letters:
            payload = b"".join(orjson.dumps(d.to_dict()) + b"\n" for d in letters)
            self._file.write(payload, len(letters))

    async def flush(self) -> None:
        """fsync the file."""
        self._file.sync()

    async def aclose(self) -> None:
        """Flush and close."""
        self._file.close()
