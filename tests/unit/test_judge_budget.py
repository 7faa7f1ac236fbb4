"""Token bucket, priority reserve and daily USD cap."""

from __future__ import annotations

import pytest

from sidecar.scorers.judge.budget import Budget, is_priority


class Clock:
    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_priority_reasons() -> None:
    assert not is_priority(["rate"])
    assert is_priority(["rate", "thumbs_down"])
    assert is_priority(["flag:low_groundedness"])


def test_bucket_refills_continuously_up_to_one_minute() -> None:
    clock = Clock()
    b = Budget(rate_per_minute=4, daily_usd_cap=None, priority_reserve=0.0, clock=clock)
    assert [b.try_admit(False) is not None for _ in range(5)] == [True] * 4 + [False]
    clock.t += 15  # one token per 15 s
    assert b.try_admit(False) is not None
    assert b.try_admit(False) is None
    clock.t += 3600
    assert b.tokens == 4.0


def test_priority_reserve_keeps_the_last_tokens_for_priority() -> None:
    clock = Clock()
    b = Budget(rate_per_minute=8, daily_usd_cap=None, priority_reserve=0.25, clock=clock)
    admitted = sum(b.try_admit(False) is not None for _ in range(10))
    assert admitted == 6  # 8 tokens, 2 kept back
    assert b.try_admit(True) is not None and b.try_admit(True) is not None
    assert b.try_admit(True) is None


def test_tiny_bucket_still_admits_plain_samples() -> None:
    b = Budget(rate_per_minute=1, daily_usd_cap=None, priority_reserve=0.5, clock=Clock())
    assert b.try_admit(False) is not None


def test_daily_cap_with_reservations_and_utc_rollover() -> None:
    clock = Clock(86_400 * 20_000 + 86_000)  # 400 s before a UTC midnight
    b = Budget(rate_per_minute=1000, daily_usd_cap=2.0, priority_reserve=0.25, clock=clock)
    first = b.try_admit(False)
    assert first == 0.0  # no reply yet: nothing to reserve
    b.settle(first, 0.5)
    assert b.spent_today == pytest.approx(0.5) and b.mean_cost == pytest.approx(0.5)
    r1, r2 = b.try_admit(False), b.try_admit(False)  # each reserves the mean cost
    assert r1 == r2 == pytest.approx(0.5)
    assert b.try_admit(False) is None  # 0.5 spent + 1.0 reserved + 0.5 > 1.5 (plain limit)
    p1 = b.try_admit(True)  # priority may use the reserve: 2.0 <= 2.0
    assert p1 == pytest.approx(0.5)
    assert b.try_admit(True) is None
    assert r1 is not None and r2 is not None and p1 is not None
    b.settle(r1, None)  # failed before any reply: released, nothing spent
    b.settle(r2, 0.5)
    b.settle(p1, 0.5)
    assert b.reserved == pytest.approx(0.0) and b.spent_today == pytest.approx(1.5)
    assert b.try_admit(False) is None
    p2 = b.try_admit(True)
    assert p2 is not None
    b.settle(p2, 0.5)
    assert b.try_admit(True) is None  # 2.0 spent: the cap
    clock.t += 400  # UTC midnight
    assert b.try_admit(False) is not None
    assert b.spent_today == 0.0
