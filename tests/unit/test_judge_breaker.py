"""Circuit breaker states."""

from __future__ import annotations

from sidecar.scorers.judge.breaker import CircuitBreaker


def test_opens_after_consecutive_failures_and_probes_once() -> None:
    now = [0.0]
    b = CircuitBreaker(3, 10.0, clock=lambda: now[0])
    for _ in range(2):
        b.record_failure()
    b.record_success()  # resets the streak
    for _ in range(2):
        b.record_failure()
    assert b.state == "closed" and b.allow()
    b.record_failure()
    assert b.state == "open" and b.state_code == 2 and not b.allow()
    assert b.retry_in() == 10.0
    now[0] = 9.9
    assert not b.allow()
    now[0] = 10.0
    assert b.state == "half_open" and b.state_code == 1
    assert b.allow() and not b.allow()  # a single probe
    b.record_failure()  # the probe failed: open again for a full cooldown
    assert b.state == "open" and b.opened_count == 2
    now[0] = 20.0
    assert b.allow()
    b.record_success()
    assert b.state == "closed" and b.state_code == 0 and b.allow() and b.allow()


def test_cancelled_probe_is_released() -> None:
    now = [0.0]
    b = CircuitBreaker(1, 1.0, clock=lambda: now[0])
    b.record_failure()
    now[0] = 1.0
    assert b.allow()
    b.release_probe()
    assert b.allow()
