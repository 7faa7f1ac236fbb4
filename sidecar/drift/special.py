"""Distribution functions the drift tests need, in pure Python (no numpy/scipy).

Accuracy is ~1e-10 relative, far beyond what a drift alarm needs; the unit
tests cross-check them against scipy when it is installed.
"""

from __future__ import annotations

import math
from functools import lru_cache
from statistics import NormalDist

_STD_NORMAL = NormalDist()
_TINY = 1e-300


def normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal Z."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def normal_ppf(p: float) -> float:
    """The standard normal quantile of ``p`` (0 < p < 1)."""
    return _STD_NORMAL.inv_cdf(p)


def chi2_sf_df1(x: float) -> float:
    """P(X > x) for a chi-square X with one degree of freedom."""
    if x <= 0.0:
        return 1.0
    return math.erfc(math.sqrt(x / 2.0))


def fisher_exact_2x2(k1: int, n1: int, k2: int, n2: int) -> float:
    """Two-sided p-value of Fisher's exact test of hits ``k`` out of ``n`` on two sides.

    The hypergeometric probability (margins fixed) of every table at most as likely as
    the observed one, with scipy's relative tolerance of 1e-7.
    """
    n, k = n1 + n2, k1 + k2
    lo, hi = max(0, k - n2), min(k, n1)
    lg = math.lgamma
    const = lg(n1 + 1) + lg(n2 + 1) + lg(k + 1) + lg(n - k + 1) - lg(n + 1)

    def log_pmf(x: int) -> float:
        return const - lg(x + 1) - lg(n1 - x + 1) - lg(k - x + 1) - lg(n2 - k + x + 1)

    cut = log_pmf(k1) + math.log1p(1e-7)
    total = math.fsum(math.exp(lp) for x in range(lo, hi + 1) if (lp := log_pmf(x)) <= cut)
    return min(1.0, total)


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + aa / c
        c = c if abs(c) > _TINY else _TINY
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + aa / c
        c = c if abs(c) > _TINY else _TINY
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-14:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    ln_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    front = math.exp(ln_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_sf(t: float, df: float) -> float:
    """P(T > t) for Student's t with ``df`` (real, > 0) degrees of freedom."""
    if math.isinf(df) or df > 1e7:
        return normal_sf(t)
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))
    return tail if t >= 0.0 else 1.0 - tail


@lru_cache(maxsize=4096)
def _t_ppf_cached(q: float, df: float) -> float:
    lo, hi = 0.0, max(4.0 * normal_ppf(q), 1.0)
    while t_sf(hi, df) > 1.0 - q:  # widen until the root is bracketed (heavy tails, small df)
        hi *= 2.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if t_sf(mid, df) > 1.0 - q:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-10 * hi:
            break
    return 0.5 * (lo + hi)


def t_ppf(q: float, df: float) -> float:
    """Student's t quantile for 0.5 <= q < 1 (the ones a confidence interval needs).

    ``df`` is rounded to 2 decimals (4 above 100) so that repeated calls with Welch's
    real-valued degrees of freedom hit a small cache.
    """
    if q < 0.5 or q >= 1.0:
        raise ValueError("t_ppf needs 0.5 <= q < 1")
    if math.isinf(df) or df > 1e7:
        return normal_ppf(q)
    return _t_ppf_cached(q, round(df, 2) if df < 100 else float(round(df)))


def kolmogorov_sf(lam: float) -> float:
    """P(K > lam) for the Kolmogorov distribution (the limit of sqrt(n)·D_n)."""
    if lam <= 0.0:
        return 1.0
    if lam < 1.18:
        # Jacobi-theta form, fast for small lam: 1 - sqrt(2π)/lam · Σ exp(-(2k-1)²π²/(8lam²)).
        w = math.pi * math.pi / (8.0 * lam * lam)
        total = sum(math.exp(-((2 * k - 1) ** 2) * w) for k in range(1, 8))
        return max(0.0, min(1.0, 1.0 - math.sqrt(2.0 * math.pi) / lam * total))
    total = 0.0
    for k in range(1, 101):
        term = math.exp(-2.0 * k * k * lam * lam)
        total += term if k % 2 else -term
        if term < 1e-17:
            break
    return max(0.0, min(1.0, 2.0 * total))
