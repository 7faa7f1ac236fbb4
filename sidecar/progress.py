"""A dependency-free progress line with rate and ETA.

On a terminal the line is redrawn in place; elsewhere (a Kubernetes Job's log,
a CI log) a plain line is written every ``log_interval`` seconds instead.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Redraws ``done/total  rate/s  ETA`` on one line at most every ``interval`` seconds."""

    def __init__(
        self,
        total: int | None,
        *,
        label: str = "",
        stream: TextIO | None = None,
        interval: float = 0.2,
        log_interval: float = 10.0,
    ) -> None:
        self.total = total
        self.label = label
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.interval = interval if self.tty else log_interval
        self.done = 0
        self._start = time.monotonic()
        self._last = 0.0

    def advance(self, n: int) -> None:
        """Count ``n`` more items and redraw if due."""
        self.done += n
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self._draw(now)

    def line(self, now: float | None = None) -> str:
        """The text of the progress line."""
        elapsed = max((now or time.monotonic()) - self._start, 1e-9)
        rate = self.done / elapsed
        if self.total and self.done > self.total:  # an estimate (brokers under-report ends)
            return f"{self.label}{self.done} (past the estimated {self.total})  {rate:8.0f}/s"
        if self.total:
            pct = 100.0 * self.done / self.total
            left = max(self.total - self.done, 0)
            eta = f"{left / rate:6.1f}s" if rate > 0 else "     ?"
            return f"{self.label}{self.done}/{self.total} ({pct:5.1f}%)  {rate:8.0f}/s  ETA {eta}"
        return f"{self.label}{self.done}  {rate:8.0f}/s"

    def _draw(self, now: float) -> None:
        if self.tty:
            self.stream.write("\r" + self.line(now) + "\x1b[K")
        else:
            self.stream.write(self.line(now) + "\n")
        self.stream.flush()

    def close(self) -> None:
        """Draw the final state (and end the terminal line)."""
        self._draw(time.monotonic())
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
