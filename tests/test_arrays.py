"""Array metrics over seeds: element-wise means and t-intervals, gaps, mismatched seeds."""

from __future__ import annotations

import numpy as np
import pytest

from suite.results.arrays import nan_to_none, stack
from suite.runs.records import ArrayValue


def _curve(values, coords=None, marks=None) -> ArrayValue:
    return ArrayValue(
        values=values, coords=coords or {"t": list(range(len(values)))}, marks=marks or {}
    )


def test_a_curve_is_averaged_element_wise_with_a_t_interval():
    cell = stack("c", [_curve([1.0, 2.0]), _curve([3.0, 2.0]), _curve([5.0, 2.0])])
    np.testing.assert_allclose(cell.mean, [3.0, 2.0])
    # sd of (1, 3, 5) is 2; t_{0.975, 2} = 4.302653; half = 4.302653 * 2 / sqrt(3)
    half = 4.302652729911275 * 2.0 / np.sqrt(3.0)
    np.testing.assert_allclose(cell.low, [3.0 - half, 2.0], rtol=1e-9)
    np.testing.assert_allclose(cell.high, [3.0 + half, 2.0], rtol=1e-9)
    assert cell.n.tolist() == [3, 3] and cell.n_seeds == 3


def test_missing_values_are_left_out_per_element():
    cell = stack("c", [_curve([1.0, None]), _curve([3.0, 4.0])])
    np.testing.assert_allclose(cell.mean, [2.0, 4.0])
    assert cell.n.tolist() == [2, 1]
    assert np.isnan(cell.low[1]) and np.isnan(cell.high[1])  # one seed: no interval
    assert nan_to_none(cell.low)[1] is None


def test_a_matrix_keeps_its_shape_and_seeds_with_other_coordinates_are_left_out():
    grid = {"i": [0, 1], "j": [0, 1, 2]}
    a = ArrayValue(values=[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]], coords=grid)
    b = ArrayValue(values=[[2.0, 3.0, 4.0], [5.0, 6.0, 7.0]], coords=grid, marks={"x": 1.0})
    other = ArrayValue(values=[[9.0] * 3] * 2, coords={"i": [5, 6], "j": [0, 1, 2]})
    cell = stack("m", [a, b, other])
    assert cell.mean.shape == (2, 3)
    np.testing.assert_allclose(cell.mean, [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert cell.marks == {"x": 1.0}
    assert stack("m", []) is None


@pytest.mark.parametrize("n", [2, 5, 30])
def test_interval_width_matches_the_scalar_summary(n):
    from suite.results.stats import summarize

    rng = np.random.default_rng(n)
    values = rng.normal(size=n)
    cell = stack("c", [_curve([float(v)]) for v in values])
    summary = summarize(values.tolist())
    assert cell.low[0] == pytest.approx(summary.ci_low)
    assert cell.high[0] == pytest.approx(summary.ci_high)
