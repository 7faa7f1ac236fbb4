from __future__ import annotations

import math
import random

import pytest

from sidecar.drift import special
from sidecar.drift.detectors import (
    Histogram,
    chi2_2x2,
    ks_statistic,
    ks_test,
    mean_diff_ci,
    mean_test,
    psi,
    psi_test,
    rate_test,
    welch,
)


def hist(values: list[float], bins: int = 20) -> Histogram:
    h = Histogram(bins)
    for v in values:
        h.add(v)
    return h


def betas(seed: int, n: int, mean: float, conc: float = 6.0) -> list[float]:
    rng = random.Random(seed)
    return [rng.betavariate(mean * conc, (1 - mean) * conc) for _ in range(n)]


def test_histogram_bins_clipping_exact_moments_and_json() -> None:
    h = hist([0.0, 0.049, 0.05, 0.5, 0.999, 1.0, -3.0, 7.0])
    assert h.counts.tolist()[:2] == [3, 1]  # 0, 0.049, -3 → bin 0; 0.05 → bin 1
    assert h.counts[-1] == 3  # 0.999, 1.0 and 7 (clipped) share the last bin
    assert h.n == 8 and sum(h.counts) == 8
    assert h.mean == pytest.approx((0.049 + 0.05 + 0.5 + 0.999 + 1 + 1) / 8)
    again = Histogram.from_json(h.to_json())
    assert again.to_json() == h.to_json()
    merged = h.copy()
    merged.merge(again)
    assert merged.n == 16 and merged.mean == pytest.approx(h.mean)
    with pytest.raises(ValueError):
        Histogram.from_json({"counts": [1, 2], "n": 4, "sum": 0, "sumsq": 0})
    with pytest.raises(ValueError):
        h.merge(Histogram(10))
    assert math.isnan(Histogram().mean) and math.isnan(hist([0.3]).var)


def test_psi_zero_for_identical_and_large_for_shifted() -> None:
    a = hist(betas(1, 5000, 0.85))
    assert psi(a, a) == pytest.approx(0.0, abs=1e-12)
    same = psi(a, hist(betas(2, 5000, 0.85)))
    shifted = psi(a, hist(betas(3, 5000, 0.60)))
    assert same < 0.02  # noise floor ≈ 19 · (1/5000 + 1/5000)
    assert shifted > 0.25
    # empty bins on one side stay finite thanks to the smoothing
    assert math.isfinite(psi(hist([0.01] * 100), hist([0.99] * 100)))


def test_psi_test_needs_min_samples() -> None:
    base, cur = hist(betas(1, 1000, 0.85)), hist(betas(2, 50, 0.3))
    r = psi_test(base, cur, min_samples=400)
    assert not r.evaluated and not r.detected and math.isnan(r.statistic)
    r = psi_test(base, hist(betas(2, 500, 0.3)), min_samples=400)
    assert r.evaluated and r.detected and r.direction == "down" and r.effect < -0.4


def test_ks_matches_scipy_on_grid_values() -> None:
    stats = pytest.importorskip("scipy.stats")
    rng = random.Random(5)
    grid = [(i + 0.5) / 20 for i in range(20)]  # bin midpoints: binned D is the exact D
    a = [rng.choice(grid[10:]) for _ in range(800)]
    b = [rng.choice(grid[8:]) for _ in range(300)]
    ha, hb = hist(a), hist(b)
    ref = stats.ks_2samp(a, b, method="asymp")
    assert ks_statistic(ha, hb) == pytest.approx(ref.statistic, abs=1e-12)
    en = 800 * 300 / 1100
    r = ks_test(ha, hb, min_d=0.0, min_samples=10)
    assert r.p_value == pytest.approx(stats.kstwobign.sf(math.sqrt(en) * ref.statistic), rel=1e-9)
    # scipy's asymptotic p uses a finite-n correction; the limit law agrees closely
    assert r.p_value == pytest.approx(ref.pvalue, rel=0.2, abs=1e-6)


def test_ks_binned_is_a_lower_bound_on_raw_data() -> None:
    stats = pytest.importorskip("scipy.stats")
    a, b = betas(1, 2000, 0.85), betas(2, 2000, 0.80)
    assert ks_statistic(hist(a), hist(b)) <= stats.ks_2samp(a, b).statistic + 1e-12


def test_welch_and_ci_match_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    a, b = betas(1, 120, 0.85), betas(2, 90, 0.80, conc=3)
    w = welch(hist(a), hist(b))
    assert w is not None
    ref = stats.ttest_ind(b, a, equal_var=False)
    assert w.t == pytest.approx(ref.statistic, rel=1e-9)
    assert w.p_value == pytest.approx(ref.pvalue, rel=1e-7)
    ci = ref.confidence_interval(0.95)
    d = mean_diff_ci(hist(a), hist(b), 0.95)
    assert d is not None and d.n_baseline == 120 and d.n_candidate == 90
    # t_ppf rounds the Welch df (a cache key): the bounds agree to ~1e-6
    assert (d.low, d.high) == (pytest.approx(ci.low, abs=1e-5), pytest.approx(ci.high, abs=1e-5))


def test_mean_test_guards() -> None:
    base = hist(betas(1, 5000, 0.85))
    small = mean_test(base, hist(betas(2, 50, 0.5)), min_samples=100)
    assert not small.evaluated and not small.detected
    tiny_shift = mean_test(base, hist(betas(3, 5000, 0.84)), alpha=0.5, min_effect=0.05)
    assert tiny_shift.evaluated and not tiny_shift.detected  # significant-ish, too small
    drop = mean_test(base, hist(betas(4, 300, 0.70)))
    assert drop.detected and drop.statistic < -5 and drop.p_value is not None
    assert drop.p_value < 1e-6
    constant = mean_test(hist([1.0] * 200), hist([0.5] * 200))
    assert constant.detected and constant.statistic == -math.inf


def test_chi2_matches_scipy_and_guards() -> None:
    stats = pytest.importorskip("scipy.stats")
    chi2 = chi2_2x2(30, 1000, 25, 300)
    assert chi2 is not None
    ref = stats.chi2_contingency([[30, 970], [25, 275]], correction=False)
    assert chi2 == pytest.approx(ref.statistic, rel=1e-9)
    assert special.chi2_sf_df1(chi2) == pytest.approx(ref.pvalue, rel=1e-9)
    assert chi2_2x2(1, 1000, 0, 100) is None  # expected count < 5
    assert chi2_2x2(0, 100, 0, 100) is None


def test_rate_test_on_two_bin_histograms() -> None:
    base = hist([1.0] * 50 + [0.0] * 950, bins=2)  # 5 % thumbs down
    spike = rate_test(base, hist([1.0] * 40 + [0.0] * 160, bins=2))  # 20 %
    assert spike.detected and spike.direction == "up" and spike.effect == pytest.approx(0.15)
    calm = rate_test(base, hist([1.0] * 11 + [0.0] * 189, bins=2))
    assert calm.evaluated and not calm.detected


@pytest.mark.parametrize("lam", [0.05, 0.4, 0.9, 1.17, 1.19, 1.6, 2.5])
def test_kolmogorov_sf_matches_scipy(lam: float) -> None:
    stats = pytest.importorskip("scipy.stats")
    assert special.kolmogorov_sf(lam) == pytest.approx(stats.kstwobign.sf(lam), abs=1e-12)


@pytest.mark.parametrize(("t", "df"), [(0.3, 2.5), (2.1, 10.7), (-1.5, 4.0), (4.0, 300.0)])
def test_t_distribution_matches_scipy(t: float, df: float) -> None:
    stats = pytest.importorskip("scipy.stats")
    assert special.t_sf(t, df) == pytest.approx(stats.t.sf(t, df), rel=1e-9)
    assert special.t_ppf(0.975, df) == pytest.approx(stats.t.ppf(0.975, round(df, 2)), rel=1e-8)


def test_special_edges() -> None:
    assert special.kolmogorov_sf(0.0) == 1.0 and special.chi2_sf_df1(0.0) == 1.0
    assert special.t_ppf(0.975, math.inf) == pytest.approx(1.959963984540054)
    assert special.betainc(2.0, 3.0, 0.0) == 0.0 and special.betainc(2.0, 3.0, 1.0) == 1.0
    with pytest.raises(ValueError):
        special.t_ppf(0.2, 5.0)


def test_rate_test_on_a_rare_flag_detects_an_outage_and_clears_after_it() -> None:
    """A flag that never fires (empty retrieval): the chi2 approximation is invalid (an
    expected count < 5), so the exact test decides; it used to skip, missing a total outage
    and keeping an alarm raised forever once the rate was back at zero."""
    base = hist([0.0] * 9600, bins=2)  # a day at ~100 values a window, never flagged
    outage = rate_test(base, hist([1.0] * 100, bins=2))
    assert outage.evaluated and outage.detected and outage.direction == "up"
    assert outage.p_value is not None and outage.p_value < 1e-100
    back = rate_test(base, hist([0.0] * 100, bins=2))
    assert back.evaluated and not back.detected and back.p_value == 1.0
    noise = rate_test(base, hist([1.0] + [0.0] * 99, bins=2))  # one hit in a window
    assert noise.evaluated and not noise.detected


@pytest.mark.parametrize(
    ("k1", "n1", "k2", "n2"),
    [(0, 9600, 3, 100), (2, 9600, 1, 100), (5, 400, 0, 100), (1, 20, 7, 15), (40, 9000, 9, 100)],
)
def test_fisher_exact_matches_scipy(k1: int, n1: int, k2: int, n2: int) -> None:
    stats = pytest.importorskip("scipy.stats")
    ref = stats.fisher_exact([[k1, n1 - k1], [k2, n2 - k2]]).pvalue
    assert special.fisher_exact_2x2(k1, n1, k2, n2) == pytest.approx(ref, rel=1e-9, abs=1e-300)
