"""Statistics over seeds: t-intervals, seeded bootstrap, paired deltas, interactions, shared ranks.

Student's t quantiles, the percentile bootstrap of the mean and the trimmed mean come from SciPy
rather than hand-written numerics: less code to trust, and SciPy's versions are tested far more
widely than ours could be. Every random draw is seeded (``derive_seed``), so intervals are
reproducible run to run.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from suite.seeding import derive_seed

LEVEL = 0.95
BOOTSTRAP_RESAMPLES = 10_000


def t_quantile(p: float, df: float) -> float:
    """Inverse CDF of Student's t with ``df`` degrees of freedom."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must lie in (0, 1), got {p}")
    return float(stats.t.ppf(p, df))


def t_half_widths(sd: np.ndarray, n: np.ndarray, level: float = LEVEL) -> np.ndarray:
    """Element-wise half-width t_{(1+level)/2, n-1} * sd / sqrt(n) of a t-interval on a mean over
    seeds (e.g. per point of a curve or cell of a matrix); NaN where n < 2."""
    sd_arr, n_arr = np.broadcast_arrays(
        np.asarray(sd, dtype=np.float64), np.asarray(n, dtype=np.float64)
    )
    out = np.full(sd_arr.shape, np.nan)
    ok = n_arr >= 2
    out[ok] = stats.t.ppf(0.5 + level / 2.0, n_arr[ok] - 1) * sd_arr[ok] / np.sqrt(n_arr[ok])
    return out


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
    """Percentile bootstrap of the mean, reproducible from ``seed``; (v, v) when every value is v,
    one value included (SciPy rejects a single value and may warn on a degenerate sample)."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        raise ValueError("cannot bootstrap zero values")
    if np.all(arr == arr[0]):
        return float(arr[0]), float(arr[0])
    res = stats.bootstrap(
        (arr,),
        np.mean,
        n_resamples=resamples,
        vectorized=True,
        confidence_level=level,
        method="percentile",
        rng=np.random.default_rng(seed),  # `rng`, not the legacy `random_state` (SciPy >= 1.15)
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


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


@dataclass(frozen=True)
class Ratio:
    """mean(numerator) / mean(denominator) over paired seeds, with a paired percentile-bootstrap
    interval (seeds resampled jointly; None with fewer than two seeds)."""

    value: float
    low: float | None
    high: float | None
    n: int


def paired_ratio(
    numerator: Mapping[int, float], denominator: Mapping[int, float], label: str = ""
) -> Ratio | None:
    """How much of a score on one task a gate keeps on another, seed by seed (same seed index =
    same initialisation); None without common seeds or with a zero denominator."""
    common = sorted(set(numerator) & set(denominator))
    num = np.array([numerator[s] for s in common], dtype=np.float64)
    den = np.array([denominator[s] for s in common], dtype=np.float64)
    if not common or abs(den.mean()) < 1e-12:
        return None
    value = float(num.mean() / den.mean())
    if len(common) < 2 or (np.all(num == num[0]) and np.all(den == den[0])):
        return Ratio(value, None, None, len(common)) if len(common) < 2 else (
            Ratio(value, value, value, len(common))
        )

    def statistic(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
        bottom = b.mean(axis=axis)
        return a.mean(axis=axis) / np.where(np.abs(bottom) < 1e-12, np.nan, bottom)

    with warnings.catch_warnings():
        # resamples whose denominator is 0 give NaN, and SciPy warns (naming BCa even for the
        # percentile method); a non-finite interval is reported as none just below
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        res = stats.bootstrap(
            (num, den),
            statistic,
            paired=True,
            vectorized=True,
            n_resamples=BOOTSTRAP_RESAMPLES,
            confidence_level=LEVEL,
            method="percentile",
            rng=np.random.default_rng(derive_seed("ratio", label, len(common))),
        )
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if not (math.isfinite(low) and math.isfinite(high)):
        return Ratio(value, None, None, len(common))
    return Ratio(value, low, high, len(common))


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
    """Interquartile mean along ``axis``: the mean of the middle half, dropping int(n / 4) values
    at each end (``trim_mean(x, 0.25)``); a float for one-dimensional input."""
    middle = stats.trim_mean(np.asarray(values, dtype=np.float64), 0.25, axis=axis)
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
