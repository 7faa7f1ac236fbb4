"""What the judge may spend: judged traces per minute and US dollars per UTC day.

* **Rate** — a token bucket of ``rate_per_minute`` tokens (one minute of burst),
  refilled continuously; one token per judged trace (cache hits are free).
* **Daily cap** — ``daily_usd_cap`` against spend computed from the endpoint's
  ``usage`` tokens at the configured prices. Since spend is known only after a
  reply, each admitted trace *reserves* the running mean cost of a judged trace
  (0 until the first reply) and the reservation is settled with the actual cost
  when its reply (or failure) arrives, so a burst of admissions cannot overshoot
  the cap by a whole queue. Spend resets at UTC midnight.
* **Priority first** — the last ``priority_reserve`` share of the bucket and of
  the cap is kept for priority samples (any reason other than ``rate``:
  ``thumbs_down``, ``low_retrieval_score``, ``flag:*``). Plain rate samples stop
  being admitted once the bucket is down to that share (or spend is up to
  ``(1 − reserve) × cap``); priority samples may use everything.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

_DAY_S = 86_400


def is_priority(reasons: Sequence[str]) -> bool:
    """Whether a sample was selected by a priority rule (any reason but ``rate``)."""
    return any(r != "rate" for r in reasons)


class Budget:
    """Token bucket plus daily USD cap; single event loop, not locked."""

    def __init__(
        self,
        *,
        rate_per_minute: float,
        daily_usd_cap: float | None,
        priority_reserve: float = 0.25,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.capacity = max(1.0, rate_per_minute)
        self.refill_per_s = rate_per_minute / 60.0
        self.cap = daily_usd_cap
        self.reserve = priority_reserve
        self._clock = clock
        self._tokens = self.capacity
        self._last = clock()
        self._day = int(self._last // _DAY_S)
        self.spent_today = 0.0
        self.reserved = 0.0
        self._judged = 0
        self._spent_total = 0.0

    @property
    def tokens(self) -> float:
        """Tokens in the bucket now."""
        self._refill()
        return self._tokens

    @property
    def mean_cost(self) -> float:
        """Mean cost of a judged trace so far (the reservation per admission)."""
        return self._spent_total / self._judged if self._judged else 0.0

    def _refill(self) -> None:
        now = self._clock()
        day = int(now // _DAY_S)
        if day != self._day:
            self._day = day
            self.spent_today = 0.0
        elapsed = max(0.0, now - self._last)
        self._last = now
        self._tokens = min(self.capacity, self._tokens + elapsed * self.refill_per_s)

    def try_admit(self, priority: bool) -> float | None:
        """Take a token and reserve the expected cost; the reservation, or None if refused."""
        self._refill()
        floor = 0.0 if priority else min(self.capacity * self.reserve, self.capacity - 1.0)
        if self._tokens - 1.0 < floor - 1e-9:
            return None
        estimate = self.mean_cost
        if self.cap is not None:
            limit = self.cap if priority else self.cap * (1.0 - self.reserve)
            if self.spent_today + self.reserved + estimate > limit or self.spent_today >= limit:
                return None
        self._tokens -= 1.0
        self.reserved += estimate
        return estimate

    def settle(self, reservation: float, cost: float | None) -> None:
        """Replace a reservation by the actual cost (None: the trace was not judged)."""
        self._refill()
        self.reserved = max(0.0, self.reserved - reservation)
        if cost is None:
            return
        self.spent_today += cost
        self._spent_total += cost
        self._judged += 1
