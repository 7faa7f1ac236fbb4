"""A circuit breaker for the judge endpoint.

States (exported as ``rag_sidecar_judge_breaker_state``: 0 closed, 1 half-open,
2 open):

* **closed** — calls pass; ``failures`` consecutive failed attempts open it;
* **open** — calls are refused without touching the network for ``open_s``;
* **half-open** — after the cooldown exactly one probe call is let through; its
  success closes the breaker, its failure opens it again for another ``open_s``.

The open → half-open transition happens lazily, when the state is read.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final, Literal

BreakerState = Literal["closed", "half_open", "open"]

STATE_CODES: Final[dict[BreakerState, int]] = {"closed": 0, "half_open": 1, "open": 2}


class CircuitBreaker:
    """Consecutive-failure breaker with a single half-open probe."""

    def __init__(
        self,
        failures: int,
        open_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failures_to_open = failures
        self.open_s = open_s
        self._clock = clock
        self._state: BreakerState = "closed"
        self._failures = 0
        self._opened_at = 0.0
        self._probe_out = False
        self.opened_count = 0
        """How many times the breaker has opened (for logs and tests)."""

    @property
    def state(self) -> BreakerState:
        """The current state (open turns half-open once the cooldown is over)."""
        if self._state == "open" and self._clock() - self._opened_at >= self.open_s:
            self._state = "half_open"
            self._probe_out = False
        return self._state

    @property
    def state_code(self) -> int:
        """0 closed, 1 half-open, 2 open."""
        return STATE_CODES[self.state]

    def retry_in(self) -> float:
        """Seconds until an open breaker lets a probe through (0 otherwise)."""
        if self.state != "open":
            return 0.0
        return max(0.0, self.open_s - (self._clock() - self._opened_at))

    @property
    def refusing(self) -> bool:
        """Whether a call now would be refused: open, or half-open with the probe out."""
        state = self.state
        return state == "open" or (state == "half_open" and self._probe_out)

    def allow(self) -> bool:
        """Whether a call may go out now; in half-open, only the first caller's may."""
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and not self._probe_out:
            self._probe_out = True
            return True
        return False

    def record_success(self) -> None:
        """The endpoint answered: close."""
        self._state = "closed"
        self._failures = 0
        self._probe_out = False

    def record_failure(self) -> None:
        """An attempt failed (transport error, timeout, 429, 5xx)."""
        self._failures += 1
        if self._state == "half_open" or self._failures >= self.failures_to_open:
            if self._state != "open":
                self.opened_count += 1
            self._state = "open"
            self._opened_at = self._clock()
            self._probe_out = False

    def release_probe(self) -> None:
        """A half-open probe ended without a verdict on the endpoint (e.g. cancelled)."""
        self._probe_out = False
