"""Online detectors, including a small version of the synthetic evaluation in bench/."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest

from sidecar.drift.online import Cusum, OnlineDetector, PageHinkley
from sidecar.drift.settings import OnlineSettings

DEFAULTS = OnlineSettings()
MAKERS: dict[str, Callable[..., OnlineDetector]] = {
    "page_hinkley": lambda **kw: PageHinkley(
        threshold=DEFAULTS.ph_lambda, drift=DEFAULTS.ph_delta, **kw
    ),
    "cusum": lambda **kw: Cusum(threshold=DEFAULTS.cusum_h, drift=DEFAULTS.cusum_k, **kw),
}


def beta(rng: random.Random, mean: float, conc: float = 6.0) -> float:
    return rng.betavariate(mean * conc, (1 - mean) * conc)


@pytest.mark.parametrize("name", MAKERS)
def test_sudden_drop_caught_within_tens_of_values(name: str) -> None:
    """Faithfulness 0.85 → 0.70 (≈1.1σ): defaults detect it in ~20 values (~10 s at 2/s)."""
    delays = []
    for seed in range(5):
        rng, det = random.Random(100 + seed), MAKERS[name](burn_in=DEFAULTS.burn_in)
        for _ in range(5000):
            assert det.update(beta(rng, 0.85)) is None
        for i in range(1000):
            alarm = det.update(beta(rng, 0.70))
            if alarm is not None:
                assert alarm.direction == "down" and alarm.test == name
                assert alarm.reference_mean == pytest.approx(0.85, abs=0.03)
                delays.append(i)
                break
    assert len(delays) == 5 and max(delays) < 80, delays


@pytest.mark.parametrize("name", MAKERS)
def test_no_false_alarms_on_stationary_streams(name: str) -> None:
    """The bench runs 10 × 100k per shape; here 3 × 20k of the skewed beta."""
    for seed in range(3):
        rng, det = random.Random(seed), MAKERS[name](burn_in=DEFAULTS.burn_in)
        alarms = sum(det.update(beta(rng, 0.85)) is not None for _ in range(20_000))
        assert alarms == 0


@pytest.mark.parametrize("name", MAKERS)
def test_rise_detected_up_and_one_sided_modes(name: str) -> None:
    rng = random.Random(7)
    both = MAKERS[name](burn_in=100)
    down = MAKERS[name](burn_in=100, direction="down")
    for _ in range(100):
        x = beta(rng, 0.5)
        both.update(x)
        down.update(x)
    fired_both = fired_down = None
    for _ in range(300):
        x = beta(rng, 0.9)
        fired_both = fired_both or both.update(x)
        fired_down = fired_down or down.update(x)
    assert fired_both is not None and fired_both.direction == "up"
    assert fired_down is None


def test_burn_in_then_reset_after_alarm_relearns_the_new_level() -> None:
    det = Cusum(threshold=5.0, drift=0.5, burn_in=20)
    rng = random.Random(1)
    for _ in range(19):
        det.update(beta(rng, 0.85))
    assert not det.ready and det.statistic == 0.0
    det.update(0.85)
    assert det.ready
    alarm = None
    while alarm is None:
        alarm = det.update(0.1)
    assert not det.ready and det.samples == 0  # reset: learning the new level
    for _ in range(200):
        assert det.update(0.1 + rng.uniform(-0.01, 0.01)) is None


def test_clipping_and_std_floor_ignore_isolated_outliers() -> None:
    """A score that is always 1 learns σ = min_std; a lone 0 moves the sum by z_clip only."""
    det = PageHinkley(threshold=15.0, drift=0.5, burn_in=50, z_clip=4.0, min_std=0.02)
    for _ in range(50):
        det.update(1.0)
    assert det.sd == 0.02
    for i in range(2000):
        assert det.update(0.0 if i % 200 == 0 else 1.0) is None


@pytest.mark.parametrize("name", MAKERS)
def test_state_round_trip_continues_identically(name: str) -> None:
    rng = random.Random(3)
    values = [beta(rng, 0.85) for _ in range(400)] + [beta(rng, 0.6) for _ in range(200)]
    a = MAKERS[name](burn_in=300)
    for x in values[:350]:
        a.update(x)
    b = MAKERS[name](burn_in=300)
    b.restore(a.to_json())
    out_a = [a.update(x) for x in values[350:]]
    out_b = [b.update(x) for x in values[350:]]
    assert out_a == out_b and any(out_a)
    fresh = MAKERS[name](burn_in=300)
    fresh.restore(MAKERS[name](burn_in=300).to_json())  # NaN reference survives as null
    assert not fresh.ready
    with pytest.raises(ValueError):
        fresh.restore({**a.to_json(), "type": "other"})


@pytest.mark.parametrize("name", MAKERS)
def test_restore_mid_burn_in_under_a_shorter_burn_in_keeps_working(name: str) -> None:
    """State saved 250 values into a 300-value burn-in, restored after ``burn_in`` was
    lowered to 200: the reference was never set, so every z was NaN and the detector
    was dead (statistic NaN, never an alarm) until the next restart."""
    rng = random.Random(5)
    before = MAKERS[name](burn_in=300)
    for _ in range(250):
        before.update(beta(rng, 0.85))
    after = MAKERS[name](burn_in=200)
    after.restore(before.to_json())
    assert after.ready and after.mu == pytest.approx(0.85, abs=0.03)
    alarms = [after.update(beta(rng, 0.60)) for _ in range(500)]
    assert math.isfinite(after.statistic)
    assert any(a is not None and a.direction == "down" for a in alarms)
