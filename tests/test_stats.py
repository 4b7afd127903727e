"""Statistics against published values and hand-computed cases."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from suite.results.stats import (
    bootstrap_ci,
    interaction,
    iqm,
    paired_delta,
    paired_ratio,
    shared_ranks,
    stratified_bootstrap_iqm,
    summarize,
    t_half_widths,
    t_quantile,
)


@pytest.mark.parametrize(
    "p, df, expected",
    [  # one- and two-sided critical values from Student's t table
        (0.975, 1, 12.7062047),
        (0.975, 2, 4.3026527),
        (0.975, 4, 2.7764451),
        (0.975, 9, 2.2621572),
        (0.975, 29, 2.0452296),
        (0.975, 30, 2.0422725),
        (0.995, 5, 4.0321430),
        (0.95, 10, 1.8124611),
        (0.025, 4, -2.7764451),
        (0.5, 7, 0.0),
    ],
)
def test_t_quantile_matches_tables(p, df, expected):
    assert t_quantile(p, df) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("p", [0.0, 1.0, -0.1, 1.5])
def test_t_quantile_rejects_p_outside_unit_interval(p):
    with pytest.raises(ValueError):
        t_quantile(p, 5)


def test_summary_t_interval_of_a_hand_computed_sample():
    # 1..5: mean 3, sd sqrt(2.5), se sqrt(0.5); half-width t_{0.975,4} * se = 1.963243
    s = summarize([1.0, 2.0, 3.0, 4.0, 5.0], "x")
    assert s.n == 5 and s.mean == pytest.approx(3.0)
    assert s.sd == pytest.approx(math.sqrt(2.5))
    assert (s.ci_low, s.ci_high) == pytest.approx((1.036757, 4.963243), abs=1e-6)
    assert s.ci_low < s.boot_low < s.mean < s.boot_high < s.ci_high


def test_summary_of_close_values():
    s = summarize([0.29, 0.30, 0.31, 0.32, 0.28], "x")
    assert s.mean == pytest.approx(0.30) and s.sd == pytest.approx(0.0158113883)
    assert (s.ci_low, s.ci_high) == pytest.approx((0.2803676, 0.3196324), abs=1e-6)


def test_single_value_has_no_interval():
    s = summarize([0.5])
    assert (s.n, s.mean, s.sd, s.ci_low, s.boot_low) == (1, 0.5, None, None, None)
    with pytest.raises(ValueError):
        summarize([])


def test_t_half_widths_elementwise_and_nan_below_two_seeds():
    sd = np.array([[1.0, 2.0], [3.0, 4.0]])
    n = np.array([[2, 5], [10, 1]])
    expected = [
        [12.7062047 / math.sqrt(2), 2.7764451 * 2 / math.sqrt(5)],
        [2.2621572 * 3 / math.sqrt(10), math.nan],
    ]
    np.testing.assert_allclose(t_half_widths(sd, n), expected, rtol=1e-7)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # n = 0 must not divide by zero
        out = t_half_widths(np.array([1.0, 1.0, 1.0]), np.array([0, 1, 30]))
    assert np.isnan(out[0]) and np.isnan(out[1])
    assert out[2] == pytest.approx(2.0452296 / math.sqrt(30))


def test_t_half_widths_agree_with_summarize_and_level():
    values = [0.1, 0.4, 0.35, 0.2, 0.6, 0.3]
    s = summarize(values)
    half = t_half_widths(np.array([s.sd]), np.array([s.n]))[0]
    assert half == pytest.approx(s.ci_high - s.mean)
    # n broadcasts against sd; a higher level gives a wider interval
    wide = t_half_widths(np.array([1.0, 2.0]), np.array(4), level=0.99)
    assert wide == pytest.approx([5.8409093 / 2, 5.8409093])  # t_{0.995,3} = 5.8409093
    assert t_half_widths(np.array([1.0]), np.array([4]), level=0.90)[0] < wide[0]


def test_bootstrap_is_seeded_and_reproducible():
    values = np.random.default_rng(0).normal(size=12).tolist()
    assert bootstrap_ci(values, seed=3) == bootstrap_ci(values, seed=3)
    assert bootstrap_ci(values, seed=3) != bootstrap_ci(values, seed=4)
    low, high = bootstrap_ci(values, seed=3)
    assert min(values) <= low < np.mean(values) < high <= max(values)


def test_bootstrap_of_tiny_samples_is_exact():
    # resampled means of {0, 1} are 0, 0.5, 1 with probability 1/4, 1/2, 1/4: the 2.5% and
    # 97.5% percentiles are the extremes
    assert bootstrap_ci([0.0, 1.0], seed=1) == (0.0, 1.0)
    # skewed: means of {0, 0, 0, 1} are k/4, k ~ Binomial(4, 1/4); P(k = 0) = 0.32 > 2.5% and
    # P(k <= 2) = 0.949 < 97.5% <= P(k <= 3) = 0.996, so a percentile interval is (0, 0.75)
    # (a "basic" interval, 2 * mean - percentiles, would be (-0.25, 0.5))
    assert bootstrap_ci([0.0, 0.0, 0.0, 1.0], seed=1) == (0.0, 0.75)


def test_bootstrap_shrinks_with_more_data_like_the_normal_interval():
    small = bootstrap_ci([0.0, 1.0] * 5, seed=2)
    large = bootstrap_ci([0.0, 1.0] * 500, seed=2)
    assert small[0] < 0.5 < small[1] and large[0] < 0.5 < large[1]
    assert large[1] - large[0] < (small[1] - small[0]) / 5
    # CLT: mean 0.5, sd 0.5, n 1000 -> 0.5 +- 1.96 * 0.5 / sqrt(1000) = 0.5 +- 0.031
    assert large == pytest.approx((0.469, 0.531), abs=0.004)
    narrow = bootstrap_ci([0.0, 1.0] * 500, seed=2, level=0.5)
    assert large[0] < narrow[0] < narrow[1] < large[1]


def test_bootstrap_of_equal_values_is_degenerate():
    assert bootstrap_ci([0.7, 0.7, 0.7], seed=0) == (0.7, 0.7)
    assert bootstrap_ci([2.0], seed=0) == (2.0, 2.0)
    with pytest.raises(ValueError):
        bootstrap_ci([], seed=0)


def test_paired_delta_uses_common_seeds_only():
    a = {0: 1.0, 1: 2.0, 2: 3.0, 3: 10.0}
    b = {0: 0.5, 1: 1.5, 2: 2.5}
    d = paired_delta(a, b)
    assert d.n == 3 and d.mean == pytest.approx(0.5) and d.sd == pytest.approx(0.0)
    assert paired_delta(a, {}) is None


def test_paired_delta_interval_on_hand_made_differences():
    a = {0: 3.0, 1: 5.0, 2: 4.0}
    b = {0: 1.0, 1: 2.0, 2: 2.0}  # differences 2, 3, 2: mean 7/3, sd 1/sqrt(3)
    d = paired_delta(a, b)
    half = 4.3026527 * (1 / math.sqrt(3)) / math.sqrt(3)
    assert d.mean == pytest.approx(7 / 3) and d.sd == pytest.approx(1 / math.sqrt(3))
    assert (d.ci_low, d.ci_high) == pytest.approx((7 / 3 - half, 7 / 3 + half))


def test_interaction_is_gain_of_both_minus_gains_alone():
    neither = {0: 0.0, 1: 0.1}
    first = {0: 0.3, 1: 0.4}
    second = {0: 0.0, 1: 0.1}
    both = {0: 0.75, 1: 0.85}
    s = interaction(both, first, second, neither)
    # gain(both) = 0.75, gain(first) = 0.3, gain(second) = 0 -> 0.45 on both seeds
    assert s.mean == pytest.approx(0.45) and s.sd == pytest.approx(0.0)
    assert interaction(both, first, second, {}) is None


def test_interaction_with_spread_over_seeds():
    neither = {0: 0.0, 1: 0.0, 2: 0.0}
    first = {0: 1.0, 1: 1.0, 2: 1.0}
    second = {0: 1.0, 1: 1.0, 2: 1.0}
    both = {0: 3.0, 1: 2.0, 2: 1.0}  # synergy 1, additive 0, antagonism -1
    s = interaction(both, first, second, neither)
    assert (s.n, s.mean, s.sd) == (3, pytest.approx(0.0), pytest.approx(1.0))


def test_shared_ranks_tie_overlapping_intervals():
    ranks = shared_ranks({"a": (0.70, 0.80), "b": (0.75, 0.85), "c": (0.10, 0.20)}, True)
    assert ranks == {"a": 1, "b": 1, "c": 3}
    lower = shared_ranks({"a": (0.1, 0.2), "b": (0.5, 0.6)}, higher_is_better=False)
    assert lower == {"a": 1, "b": 2}
    # a chain: a overlaps b, b overlaps c, a is clear of c
    chain = shared_ranks({"a": (0.8, 0.9), "b": (0.6, 0.85), "c": (0.5, 0.7)}, True)
    assert chain == {"a": 1, "b": 1, "c": 2}


@pytest.mark.parametrize(
    "values, expected",
    [
        ([3.0], 3.0),
        ([1.0, 9.0, 5.0], 5.0),  # n < 4: nothing cut
        ([1.0, 2.0, 3.0, 100.0], 2.5),  # n = 4: one cut at each end
        ([5.0, 1.0, 100.0, 3.0, 2.0], 10 / 3),  # n = 5: int(1.25) = 1 cut: mean of 2, 3, 5
        ([1, 2, 3, 4, 5, 6, 7, 8], 4.5),  # mean of 3..6
        ([1, 2, 3, 4, 5, 6, 7, 100], 4.5),  # drops 1, 2 and 7, 100
        (list(range(10)), 4.5),  # n = 10: two cut at each end, mean of 2..7
    ],
)
def test_iqm_is_mean_of_middle_half(values, expected):
    assert iqm(values) == pytest.approx(expected)
    assert isinstance(iqm(values), float)


def test_iqm_along_an_axis():
    rows = np.array([[1.0, 2.0, 3.0, 100.0], [0.0, 10.0, 20.0, -50.0]])
    np.testing.assert_allclose(iqm(rows, axis=1), [2.5, 5.0])
    np.testing.assert_allclose(iqm(rows.T, axis=0), [2.5, 5.0])


def test_stratified_bootstrap_resamples_within_groups():
    constant = stratified_bootstrap_iqm([[1.0, 1.0], [1.0, 1.0, 1.0]], seed=0)
    assert constant == (1.0, 1.0, 1.0)
    point, low, high = stratified_bootstrap_iqm([[0.1, 0.2, 0.3], [0.5, 0.6, 0.9]], seed=0)
    # six values, one cut at each end: the mean of 0.2, 0.3, 0.5, 0.6
    assert point == pytest.approx(0.4)
    assert low <= point <= high and high - low > 0
    assert stratified_bootstrap_iqm([[0.1, 0.2, 0.3], [0.5, 0.6, 0.9]], seed=0) == (
        point,
        low,
        high,
    )
    with pytest.raises(ValueError):
        stratified_bootstrap_iqm([[], []], seed=0)


def test_a_ratio_whose_resampled_denominator_can_be_zero_has_no_interval_and_no_warning():
    """Two seeds, one with a zero denominator: a quarter of the resamples divide by zero. The
    interval is undefined and reported as none, without SciPy's warning reaching the user."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ratio = paired_ratio({0: 0.0, 1: 0.0172}, {0: 0.0, 1: 0.0016})
    assert ratio is not None and ratio.value == pytest.approx(0.0172 / 0.0016)
    assert (ratio.low, ratio.high, ratio.n) == (None, None, 2)


def test_report_numbers_stay_readable_at_any_size():
    from suite.results.report import fmt

    assert (fmt(0.74812), fmt(765.4), fmt(2302585093006.0), fmt(None)) == (
        "0.748", "765", "2.3e+12", "—",
    )  # fmt: skip
    assert (fmt(0.4531, signed=True), fmt(-729.0, signed=True)) == ("+0.453", "-729.000")
    assert fmt(2.3e12, signed=True) == "+2.3e+12"
