"""Window tests: compare a current histogram with a baseline histogram.

Every score series is kept as a :class:`Histogram`: fixed bins over [0, 1] plus
the exact count, sum and sum of squares, so memory is O(bins) whatever the
traffic, histograms of several windows (or replicas) merge by addition, and
means/variances are exact (not read off the bins). A rate (a flag, thumbs
down) is a two-bin histogram of 0/1 values.

Tests (all return a :class:`TestResult`; none alarms below its minimum sample
size on either side, so a quiet window cannot fire):

``psi``
    Population Stability Index Σ (c−b)·ln(c/b) over bin shares, each share
    smoothed as (p + eps)/(1 + bins·eps) so empty bins stay finite. Usual
    reading: < 0.1 stable, 0.1–0.25 moderate shift, > 0.25 major shift (the
    alarm). Under no change PSI ≈ χ²(bins−1)·(1/n_b + 1/n_c), i.e. ≈ 19/n for
    20 bins: that noise floor is why ``psi_min_samples`` is larger (400 → ~0.05).
``ks``
    Two-sample Kolmogorov–Smirnov D, the largest CDF gap, with the asymptotic
    p-value Q_KS(√(n_b·n_c/(n_b+n_c))·D). Binning caveat: the CDFs are compared
    only at bin edges, so D is a lower bound of the raw-sample D (exact when
    values sit on the bin grid, e.g. 0–3 grades); the test is conservative.
``mean_diff``
    Welch's t on the exact means; the statistic is t (≈ z at these sizes),
    signed current − baseline.
``chi2``
    Pearson χ² (no continuity correction) of the 2×2 table hits/misses ×
    baseline/current, df = 1; when an expected count is below ``min_expected``
    (the approximation's validity condition: a rare flag) the p-value is Fisher's
    exact test's, so a flag that never fires is still seen to jump (and to fall back).

``ks``, ``mean_diff`` and ``chi2`` alarm when p < ``alpha`` *and* the effect is
practically large (D ≥ ``ks_min_d``, |Δmean| ≥ ``min_mean_diff``, |Δrate| ≥
``min_rate_diff``): with a day of baseline any tiny, harmless difference is
"significant", and with a small window only a large one is.
"""

from __future__ import annotations

import math
import operator
from array import array
from dataclasses import dataclass
from typing import Any, Literal

from .settings import WindowTestSettings
from .special import chi2_sf_df1, fisher_exact_2x2, kolmogorov_sf, t_ppf, t_sf

Direction = Literal["up", "down", "none"]


class Histogram:
    """Fixed-bin histogram over [0, 1] with exact n, sum and sum of squares.

    Counts are a compact ``array('q')`` (~8 bytes a bin): about 350 bytes per
    20-bin histogram.
    """

    __slots__ = ("counts", "n", "sumsq", "total")

    def __init__(self, bins: int = 20) -> None:
        self.counts = array("q", bytes(8 * bins))
        self.n = 0
        self.total = 0.0
        self.sumsq = 0.0

    @property
    def bins(self) -> int:
        """Number of bins."""
        return len(self.counts)

    def add(self, x: float) -> None:
        """Count one value; values outside [0, 1] are clipped into it."""
        x = 0.0 if x < 0.0 else 1.0 if x > 1.0 else x
        counts = self.counts
        i = int(x * len(counts))
        counts[i if i < len(counts) else -1] += 1
        self.n += 1
        self.total += x
        self.sumsq += x * x

    def merge(self, other: Histogram) -> None:
        """Add ``other``'s counts into this histogram (same bins)."""
        if other.bins != self.bins:
            raise ValueError(f"cannot merge {other.bins} bins into {self.bins}")
        self.counts = array("q", map(operator.add, self.counts, other.counts))
        self.n += other.n
        self.total += other.total
        self.sumsq += other.sumsq

    def copy(self) -> Histogram:
        """An independent copy."""
        h = Histogram(self.bins)
        h.merge(self)
        return h

    @property
    def mean(self) -> float:
        """Exact mean (NaN when empty)."""
        return self.total / self.n if self.n else math.nan

    @property
    def var(self) -> float:
        """Exact sample variance, ddof=1 (NaN below two values)."""
        if self.n < 2:
            return math.nan
        return max(0.0, (self.sumsq - self.total * self.total / self.n) / (self.n - 1))

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form (the snapshot and reference-file format)."""
        return {"counts": self.counts.tolist(), "n": self.n, "sum": self.total, "sumsq": self.sumsq}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Histogram:
        """Inverse of :meth:`to_json`; checks that the counts add up to n."""
        counts = [int(c) for c in doc["counts"]]
        if not counts or min(counts) < 0 or sum(counts) != int(doc["n"]):
            raise ValueError("histogram counts must be non-negative and add up to n")
        h = cls(len(counts))
        h.counts, h.n = array("q", counts), int(doc["n"])
        h.total, h.sumsq = float(doc["sum"]), float(doc["sumsq"])
        return h


@dataclass(frozen=True, slots=True)
class TestResult:
    """One test of a current window against a baseline."""

    test: str
    statistic: float
    p_value: float | None
    detected: bool
    evaluated: bool
    """False when a side had too few samples: the statistic is NaN, never an alarm."""
    threshold: float
    direction: Direction
    effect: float
    """current − baseline: mean difference, or rate difference for chi2."""
    n_baseline: int
    n_current: int


def _direction(effect: float) -> Direction:
    return "up" if effect > 0 else "down" if effect < 0 else "none"


def _skipped(test: str, threshold: float, base: Histogram, cur: Histogram) -> TestResult:
    return TestResult(test, math.nan, None, False, False, threshold, "none", 0.0, base.n, cur.n)


def psi(base: Histogram, cur: Histogram, eps: float = 1e-4) -> float:
    """Population Stability Index of ``cur`` against ``base`` (both non-empty)."""
    k = base.bins
    norm = 1.0 + k * eps
    total = 0.0
    for b, c in zip(base.counts, cur.counts, strict=True):
        pb = (b / base.n + eps) / norm
        pc = (c / cur.n + eps) / norm
        total += (pc - pb) * math.log(pc / pb)
    return total


def psi_test(
    base: Histogram,
    cur: Histogram,
    *,
    alarm: float = 0.25,
    min_samples: int = 400,
    eps: float = 1e-4,
) -> TestResult:
    """PSI, alarming at ``alarm`` when both sides have ``min_samples`` values."""
    if min(base.n, cur.n) < max(min_samples, 1):
        return _skipped("psi", alarm, base, cur)
    value = psi(base, cur, eps)
    effect = cur.mean - base.mean
    return TestResult(
        "psi", value, None, value >= alarm, True, alarm, _direction(effect), effect, base.n, cur.n
    )


def ks_statistic(base: Histogram, cur: Histogram) -> float:
    """Largest gap between the two binned CDFs (both non-empty)."""
    fb = fc = gap = 0.0
    for b, c in zip(base.counts, cur.counts, strict=True):
        fb += b / base.n
        fc += c / cur.n
        gap = max(gap, abs(fc - fb))
    return gap


def ks_test(
    base: Histogram,
    cur: Histogram,
    *,
    alpha: float = 0.001,
    min_d: float = 0.1,
    min_samples: int = 100,
) -> TestResult:
    """Binned two-sample KS with the asymptotic p-value."""
    if min(base.n, cur.n) < max(min_samples, 1):
        return _skipped("ks", alpha, base, cur)
    d = ks_statistic(base, cur)
    p = kolmogorov_sf(math.sqrt(base.n * cur.n / (base.n + cur.n)) * d)
    effect = cur.mean - base.mean
    return TestResult(
        "ks", d, p, p < alpha and d >= min_d, True, alpha, _direction(effect), effect, base.n, cur.n
    )


@dataclass(frozen=True, slots=True)
class Welch:
    """Welch's unequal-variance comparison of two means (``b`` minus ``a``)."""

    diff: float
    se: float
    t: float
    df: float
    p_value: float
    """Two-sided."""

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        """The ``level`` confidence interval of the difference."""
        half = t_ppf(0.5 + level / 2.0, self.df) * self.se
        return self.diff - half, self.diff + half


def welch(a: Histogram, b: Histogram) -> Welch | None:
    """Compare ``b``'s mean with ``a``'s; None below two values per side or zero variance."""
    if a.n < 2 or b.n < 2:
        return None
    va, vb = a.var / a.n, b.var / b.n
    se2 = va + vb
    diff = b.mean - a.mean
    if se2 <= 0.0:
        return None
    se = math.sqrt(se2)
    den = (va * va / (a.n - 1) if va else 0.0) + (vb * vb / (b.n - 1) if vb else 0.0)
    df = se2 * se2 / den if den > 0.0 else math.inf
    t = diff / se
    return Welch(diff, se, t, df, min(1.0, 2.0 * t_sf(abs(t), df)))


def mean_test(
    base: Histogram,
    cur: Histogram,
    *,
    alpha: float = 0.001,
    min_effect: float = 0.05,
    min_samples: int = 100,
) -> TestResult:
    """Welch test of the window mean against the baseline mean (statistic: t)."""
    if min(base.n, cur.n) < max(min_samples, 2):
        return _skipped("mean_diff", alpha, base, cur)
    w = welch(base, cur)
    if w is None:  # both sides constant: a shift is certain, a tie is not one
        effect = cur.mean - base.mean
        t = math.copysign(math.inf, effect) if effect else 0.0
        hit = abs(effect) >= min_effect
        p = 0.0 if effect else 1.0
        return TestResult(
            "mean_diff", t, p, hit, True, alpha, _direction(effect), effect, base.n, cur.n
        )
    hit = w.p_value < alpha and abs(w.diff) >= min_effect
    return TestResult(
        "mean_diff", w.t, w.p_value, hit, True, alpha, _direction(w.diff), w.diff, base.n, cur.n
    )


def chi2_2x2(k1: int, n1: int, k2: int, n2: int, min_expected: float = 5.0) -> float | None:
    """Pearson χ² of hits ``k``/trials ``n`` on two sides; None if an expected count is small."""
    n = n1 + n2
    k = k1 + k2
    if n1 <= 0 or n2 <= 0 or k <= 0 or k >= n:
        return None
    expected = (n1 * k / n, n1 * (n - k) / n, n2 * k / n, n2 * (n - k) / n)
    if min(expected) < min_expected:
        return None
    observed = (k1, n1 - k1, k2, n2 - k2)
    return sum((o - e) ** 2 / e for o, e in zip(observed, expected, strict=True))


def rate_test(
    base: Histogram,
    cur: Histogram,
    *,
    alpha: float = 0.001,
    min_effect: float = 0.01,
    min_samples: int = 100,
    min_expected: float = 5.0,
) -> TestResult:
    """χ² test of a rate (a two-bin histogram of 0/1 values: hits are the upper bin);
    Fisher's exact p-value where an expected count is below ``min_expected``."""
    if min(base.n, cur.n) < max(min_samples, 1):
        return _skipped("chi2", alpha, base, cur)
    kb, kc = base.counts[-1], cur.counts[-1]
    effect = kc / cur.n - kb / base.n
    chi2 = chi2_2x2(kb, base.n, kc, cur.n, min_expected)
    if chi2 is not None:
        p = chi2_sf_df1(chi2)
    else:  # no hits (or only hits) on both sides give 0 and p = 1: the alarm clears
        chi2 = chi2_2x2(kb, base.n, kc, cur.n, 0.0) or 0.0
        p = fisher_exact_2x2(kb, base.n, kc, cur.n)
    hit = p < alpha and abs(effect) >= min_effect
    return TestResult("chi2", chi2, p, hit, True, alpha, _direction(effect), effect, base.n, cur.n)


@dataclass(frozen=True, slots=True)
class MeanDiff:
    """A live A/B readout: candidate mean − baseline mean with a confidence interval."""

    estimate: float
    low: float
    high: float
    p_value: float
    n_baseline: int
    n_candidate: int
    baseline_mean: float
    candidate_mean: float


def mean_diff_ci(base: Histogram, cand: Histogram, level: float = 0.95) -> MeanDiff | None:
    """Welch difference of means with its ``level`` interval; None below two values a side."""
    w = welch(base, cand)
    if w is None:
        return None
    low, high = w.interval(level)
    return MeanDiff(w.diff, low, high, w.p_value, base.n, cand.n, base.mean, cand.mean)


def window_tests(
    kind: str, base: Histogram, cur: Histogram, t: WindowTestSettings
) -> list[TestResult]:
    """The tests of one closed window of a ``score`` or ``rate`` series against one baseline."""
    if kind == "rate":
        return [
            rate_test(
                base,
                cur,
                alpha=t.alpha,
                min_effect=t.min_rate_diff,
                min_samples=t.min_samples,
                min_expected=t.min_expected,
            )
        ]
    return [
        psi_test(base, cur, alarm=t.psi_alarm, min_samples=t.psi_min_samples, eps=t.psi_eps),
        ks_test(base, cur, alpha=t.alpha, min_d=t.ks_min_d, min_samples=t.min_samples),
        mean_test(base, cur, alpha=t.alpha, min_effect=t.min_mean_diff, min_samples=t.min_samples),
    ]
