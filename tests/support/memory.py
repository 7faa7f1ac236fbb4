"""In-memory sinks for tests: record what was written, fail or stall on demand."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from sidecar.errors import RetryableError
from sidecar.stages import DeadLetter, Result


class MemorySink:
    def __init__(self, fail_times: int = 0, exc: Exception | None = None, delay: float = 0) -> None:
        self.name = "memory"
        self.results: list[Result] = []
        self.fail_times = fail_times
        self.exc = exc or RetryableError("try again", retry_after=0.01)
        self.delay = delay
        self.closed = False

    async def start(self) -> None:
        pass

    async def write(self, results: Sequence[Result]) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail_times:
            self.fail_times -= 1
            raise self.exc
        self.results.extend(results)

    async def flush(self) -> None:
        pass

    async def aclose(self) -> None:
        self.closed = True


class GatedSink:
    """Holds every write until ``gate`` is set (a sink stuck for as long as a test wants);
    then records the trace ids written."""

    name = "gated"

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.written: list[str] = []

    async def start(self) -> None:
        pass

    async def write(self, results: Sequence[Result]) -> None:
        await self.gate.wait()
        self.written.extend(r.trace.trace_id for r in results)

    async def flush(self) -> None:
        pass

    async def aclose(self) -> None:
        pass


class MemoryDLQ:
    def __init__(self) -> None:
        self.name = "memory"
        self.letters: list[DeadLetter] = []

    async def start(self) -> None:
        pass

    async def write(self, letters: Sequence[DeadLetter]) -> None:
        self.letters.extend(letters)

    async def flush(self) -> None:
        pass

    async def aclose(self) -> None:
        pass
