"""The joiner's background task: sweep expired state on a timer, write what it gives up.

Writes go through the pipeline's retrying path (every sink, like judge events).
A write that still fails is counted (``rag_sidecar_feedback_write_failed_total``)
and logged without content: comments may hold personal data.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from prometheus_client import Counter

from ..stages import Result

log = logging.getLogger(__name__)

Write = Callable[[list[Result]], Awaitable[None]]


class Sweeper:
    """Calls ``sweep`` every ``interval_s`` and writes the events it returns."""

    def __init__(
        self,
        sweep: Callable[[], list[Result]],
        *,
        interval_s: float,
        timeout_s: float,
        failed: Counter,
    ) -> None:
        """``timeout_s`` bounds the shutdown: :meth:`stop` and :meth:`final` together."""
        self._sweep = sweep
        self._interval = interval_s
        self._timeout = timeout_s
        self._failed = failed
        self._write: Write | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def start(self, write: Write) -> None:
        """Start the timer; events go to ``write``."""
        self._write = write
        self._task = asyncio.create_task(self._loop(), name="feedback:sweep")

    def deadline(self) -> float:
        """The event loop time by which a shutdown starting now must be over."""
        return asyncio.get_running_loop().time() + self._timeout

    async def stop(self, deadline: float) -> None:
        """Stop the timer, letting a write in progress finish (until ``deadline``)."""
        self._stop.set()
        if self._task is None:
            return
        try:
            async with asyncio.timeout_at(deadline):
                await self._task
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def final(self, events: list[Result], deadline: float) -> None:
        """Write the last events at shutdown (until ``deadline``)."""
        if events:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(deadline):
                    await self.emit(events)

    async def _loop(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await self._stop.wait()
            events = self._sweep()
            if events:
                await self.emit(events)

    async def emit(self, events: list[Result]) -> None:
        """Write events; a failure is counted and logged (type only), never raised (a
        write cut short at shutdown is counted too)."""
        if self._write is None:
            self._failed.inc(len(events))
            return
        try:
            await self._write(events)
        except asyncio.CancelledError:
            self._failed.inc(len(events))
            raise
        except Exception as exc:
            self._failed.inc(len(events))
            log.warning(
                "feedback events not written",
                extra={"fields": {"events": len(events), "error": type(exc).__name__}},
            )
