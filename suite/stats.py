"""Statistics over seeds: t-intervals, seeded bootstrap, paired deltas, interactions, shared ranks.

Student's t quantiles come from the regularised incomplete beta function (Lentz's continued
fraction) inverted by bisection: exact to ~1e-10 without a SciPy dependency, and tested against
published table values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from suite.seeding import derive_seed

LEVEL = 0.95
BOOTSTRAP_RESAMPLES = 10_000


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, eps = 1e-300, 1e-15
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    x = df / (df + t * t)
    tail = 0.5 * betainc(df / 2.0, 0.5, x)
    return 1.0 - tail if t > 0 else tail


def t_quantile(p: float, df: float) -> float:
    """Inverse CDF of Student's t with ``df`` degrees of freedom."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must lie in (0, 1), got {p}")
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


@dataclass(frozen=True)
class Summary:
    """Mean over seeds with a 95% t-interval and a seeded percentile-bootstrap interval."""

    n: int
    mean: float
    sd: float | None
    ci_low: float | None
    ci_high: float | None
    boot_low: float | None
    boot_high: float | None

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "n": self.n,
            "mean": self.mean,
            "sd": self.sd,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "boot_low": self.boot_low,
            "boot_high": self.boot_high,
        }


def bootstrap_ci(
    values: Sequence[float], seed: int, level: float = LEVEL, resamples: int = BOOTSTRAP_RESAMPLES
) -> tuple[float, float]:
    """Percentile bootstrap of the mean, reproducible from ``seed``."""
    arr = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, arr.size, size=(resamples, arr.size))
    means = arr[idx].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return float(low), float(high)


def summarize(values: Sequence[float], label: str = "", level: float = LEVEL) -> Summary:
    """Mean, sample sd (ddof = 1), t-interval and bootstrap interval; intervals need n >= 2."""
    arr = np.asarray(values, dtype=np.float64)
    n = int(arr.size)
    if n == 0:
        raise ValueError("cannot summarise zero values")
    mean = float(arr.mean())
    if n == 1:
        return Summary(1, mean, None, None, None, None, None)
    sd = float(arr.std(ddof=1))
    half = t_quantile(0.5 + level / 2.0, n - 1) * sd / math.sqrt(n)
    boot = bootstrap_ci(arr, derive_seed("bootstrap", label, n))
    return Summary(n, mean, sd, mean - half, mean + half, boot[0], boot[1])


def paired_delta(
    values: Mapping[int, float], reference: Mapping[int, float], label: str = ""
) -> Summary | None:
    """Mean difference over the seeds both have (same seed = same data and initialisation)."""
    common = sorted(set(values) & set(reference))
    if not common:
        return None
    return summarize([values[s] - reference[s] for s in common], f"delta/{label}")


def interaction(
    both: Mapping[int, float],
    first: Mapping[int, float],
    second: Mapping[int, float],
    neither: Mapping[int, float],
    label: str = "",
) -> Summary | None:
    """Two-factor interaction, paired per seed: gain(A+B) - gain(A) - gain(B)
    = y_AB - y_A - y_B + y_0."""
    common = sorted(set(both) & set(first) & set(second) & set(neither))
    if not common:
        return None
    return summarize(
        [both[s] - first[s] - second[s] + neither[s] for s in common], f"interaction/{label}"
    )


def shared_ranks(
    intervals: Mapping[str, tuple[float, float]], higher_is_better: bool
) -> dict[str, int]:
    """Rank = 1 + number of entries whose interval lies entirely on the better side of this one;
    entries whose intervals overlap share a rank (as on LMSYS's arena)."""
    ranks = {}
    for name, (low, high) in intervals.items():
        if higher_is_better:
            better = sum(1 for o, (lo, _) in intervals.items() if o != name and lo > high)
        else:
            better = sum(1 for o, (_, hi) in intervals.items() if o != name and hi < low)
        ranks[name] = 1 + better
    return ranks


def iqm(values: Sequence[float] | np.ndarray, axis: int = -1) -> Any:
    """Interquartile mean along ``axis``: the mean of the middle half (the cut of
    trim_mean(x, 0.25)); a float for one-dimensional input."""
    arr = np.sort(np.asarray(values, dtype=np.float64), axis=axis)
    n = arr.shape[axis]
    cut = int(0.25 * n)
    middle = np.take(arr, np.arange(cut, n - cut), axis=axis).mean(axis=axis)
    return float(middle) if np.ndim(middle) == 0 else middle


def stratified_bootstrap_iqm(
    groups: Sequence[Sequence[float]],
    seed: int,
    level: float = LEVEL,
    resamples: int = 2000,
) -> tuple[float, float, float]:
    """(IQM, low, high) over pooled groups (tasks), resampling runs (seeds) within each group,
    as rliable does for scores across tasks."""
    arrays = [np.asarray(g, dtype=np.float64) for g in groups if len(g)]
    if not arrays:
        raise ValueError("no values to aggregate")
    point = iqm(np.concatenate(arrays))
    rng = np.random.default_rng(seed)
    pooled = np.concatenate(
        [a[rng.integers(0, a.size, size=(resamples, a.size))] for a in arrays], axis=1
    )  # (resamples, total runs)
    stats = iqm(pooled, axis=1)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(stats, [alpha, 1.0 - alpha])
    return point, float(low), float(high)
