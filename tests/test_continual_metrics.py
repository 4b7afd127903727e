"""Continual-learning metrics against matrices computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from suite.tasks.families.continual import metrics as cl

# rows: before any training, after task 1, 2, 3; task 1 improves while task 2 is learned, so
# Chaudhry's forgetting (from the best row) and Avalanche's (from right after learning) differ
R = np.array(
    [
        [0.1, 0.2, 0.0],
        [0.8, 0.3, 0.1],
        [0.9, 0.7, 0.2],
        [0.5, 0.6, 0.9],
    ]
)


def test_scalars_match_hand_computation():
    assert cl.acc(R) == pytest.approx((0.5 + 0.6 + 0.9) / 3)
    assert cl.bwt(R) == pytest.approx(((0.5 - 0.8) + (0.6 - 0.7)) / 2)  # -0.2
    assert cl.fwt(R) == pytest.approx(((0.3 - 0.2) + (0.2 - 0.0)) / 2)  # needs R[0]: 0.15
    assert cl.forgetting_max(R) == pytest.approx(((0.9 - 0.5) + (0.7 - 0.6)) / 2)  # 0.25
    assert cl.forgetting_last(R) == pytest.approx(((0.8 - 0.5) + (0.7 - 0.6)) / 2)  # 0.2
    assert cl.forgetting_last(R) == pytest.approx(-cl.bwt(R))
    assert cl.forgetting_max(R) != pytest.approx(cl.forgetting_last(R))


def test_fwt_uses_the_untrained_row():
    shifted = R.copy()
    shifted[0] += 0.1
    assert cl.fwt(shifted) == pytest.approx(cl.fwt(R) - 0.1)
    assert cl.bwt(shifted) == pytest.approx(cl.bwt(R))


def test_malformed_matrix_is_refused():
    with pytest.raises(ValueError, match="T \\+ 1 rows"):
        cl.acc(np.zeros((3, 3)))


def test_top_k_overlap_and_js():
    now = np.array([[0, 1], [2, 3]])
    then = np.array([[1, 0], [2, 4]])
    assert cl.top_k_overlap(now, then) == pytest.approx((2 / 2 + 1 / 2) / 2)
    assert cl.js_divergence(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(1.0)
    assert cl.js_divergence(np.array([0.3, 0.7]), np.array([0.3, 0.7])) == pytest.approx(0.0)
    assert cl.load_histogram(now, 5).tolist() == [0.25, 0.25, 0.25, 0.25, 0.0]


def test_routing_matrices_are_lower_triangular():
    fixed = np.array([[[0, 1]], [[2, 3]]])  # (N=2, T=1, k=2)
    moved = np.array([[[0, 4]], [[2, 3]]])
    chosen = [[fixed], [moved, fixed]]  # task 1's probe changed one of its 4 choices at stage 2
    stability, drift = cl.routing_matrices(chosen, n_experts=5)
    assert stability[0, 0] == 1.0 and stability[1, 1] == 1.0
    assert stability[1, 0] == pytest.approx(3 / 4)
    assert math.isnan(stability[0, 1]) and math.isnan(drift[0, 1])
    assert drift[1, 0] > 0 and drift[0, 0] == 0
    assert cl.below_diagonal_mean(stability) == pytest.approx(0.75)
