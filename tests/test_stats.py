"""Statistics against published values and hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from suite.stats import (
    betainc,
    bootstrap_ci,
    interaction,
    paired_delta,
    shared_ranks,
    summarize,
    t_cdf,
    t_quantile,
)


@pytest.mark.parametrize(
    "p, df, expected",
    [  # two-sided 95% and 99% critical values from Student's t table
        (0.975, 1, 12.7062047),
        (0.975, 2, 4.3026527),
        (0.975, 4, 2.7764451),
        (0.975, 9, 2.2621572),
        (0.975, 30, 2.0422725),
        (0.995, 5, 4.0321430),
        (0.95, 10, 1.8124611),
        (0.025, 4, -2.7764451),
    ],
)
def test_t_quantile_matches_tables(p, df, expected):
    assert t_quantile(p, df) == pytest.approx(expected, abs=1e-6)


def test_t_cdf_and_betainc_known_values():
    assert t_cdf(0.0, 7) == pytest.approx(0.5)
    assert t_cdf(1.0, 1) == pytest.approx(0.75)  # Cauchy: 1/2 + atan(1)/pi
    assert betainc(2, 3, 0.4) == pytest.approx(0.5248, abs=1e-4)
    assert betainc(0.5, 0.5, 0.5) == pytest.approx(0.5)


def test_summary_mean_sd_and_t_interval():
    values = [0.29, 0.30, 0.31, 0.32, 0.28]
    s = summarize(values, "x")
    assert s.n == 5 and s.mean == pytest.approx(0.30)
    assert s.sd == pytest.approx(np.std(values, ddof=1))
    half = 2.7764451 * s.sd / math.sqrt(5)
    assert (s.ci_low, s.ci_high) == pytest.approx((0.30 - half, 0.30 + half))
    assert s.ci_low < s.boot_low <= s.mean <= s.boot_high < s.ci_high


def test_single_value_has_no_interval():
    s = summarize([0.5])
    assert (s.n, s.mean, s.sd, s.ci_low) == (1, 0.5, None, None)


def test_bootstrap_is_seeded_and_reproducible():
    values = np.random.default_rng(0).normal(size=12).tolist()
    assert bootstrap_ci(values, seed=3) == bootstrap_ci(values, seed=3)
    assert bootstrap_ci(values, seed=3) != bootstrap_ci(values, seed=4)
    low, high = bootstrap_ci(values, seed=3)
    assert min(values) <= low < np.mean(values) < high <= max(values)


def test_paired_delta_uses_common_seeds_only():
    a = {0: 1.0, 1: 2.0, 2: 3.0, 3: 10.0}
    b = {0: 0.5, 1: 1.5, 2: 2.5}
    d = paired_delta(a, b)
    assert d.n == 3 and d.mean == pytest.approx(0.5) and d.sd == pytest.approx(0.0)
    assert paired_delta(a, {}) is None


def test_interaction_is_gain_of_both_minus_gains_alone():
    neither = {0: 0.0, 1: 0.1}
    first = {0: 0.3, 1: 0.4}
    second = {0: 0.0, 1: 0.1}
    both = {0: 0.75, 1: 0.85}
    s = interaction(both, first, second, neither)
    # gain(both) = 0.75, gain(first) = 0.3, gain(second) = 0 -> 0.45 on both seeds
    assert s.mean == pytest.approx(0.45) and s.sd == pytest.approx(0.0)


def test_shared_ranks_tie_overlapping_intervals():
    ranks = shared_ranks({"a": (0.70, 0.80), "b": (0.75, 0.85), "c": (0.10, 0.20)}, True)
    assert ranks == {"a": 1, "b": 1, "c": 3}
    lower = shared_ranks({"a": (0.1, 0.2), "b": (0.5, 0.6)}, higher_is_better=False)
    assert lower == {"a": 1, "b": 2}


def test_iqm_matches_trimmed_mean():
    from suite.stats import iqm

    assert iqm([1, 2, 3, 4, 5, 6, 7, 100]) == pytest.approx(4.5)  # drops 1, 2 and 7, 100
    assert iqm([3.0]) == 3.0


def test_stratified_bootstrap_resamples_within_groups():
    from suite.stats import stratified_bootstrap_iqm

    constant = stratified_bootstrap_iqm([[1.0, 1.0], [1.0, 1.0, 1.0]], seed=0)
    assert constant == (1.0, 1.0, 1.0)
    point, low, high = stratified_bootstrap_iqm([[0.1, 0.2, 0.3], [0.5, 0.6, 0.9]], seed=0)
    assert low <= point <= high and high - low > 0
    assert stratified_bootstrap_iqm([[0.1, 0.2, 0.3], [0.5, 0.6, 0.9]], seed=0) == (
        point,
        low,
        high,
    )
