"""Continual-learning metrics from the accuracy matrix R and the routing matrices.

R has T + 1 rows and T columns: R[i][j] is the accuracy on task j after learning tasks 1..i,
row 0 before any training (tasks are numbered from 1 in the formulas, columns from 0 in code).

* ACC = mean_j R[T][j]
* BWT = 1/(T-1) Σ_{j<T} (R[T][j] - R[j][j])
* FWT = 1/(T-1) Σ_{j>1} (R[j-1][j] - R[0][j])
* forgetting_max (Chaudhry et al. 2018) = 1/(T-1) Σ_{j<T} (max_{1<=i<T} R[i][j] - R[T][j])
* forgetting_last (Avalanche's ExperienceForgetting) = 1/(T-1) Σ_{j<T} (R[j][j] - R[T][j]),
  which is -BWT; it differs from forgetting_max wherever a task's best accuracy came later than
  right after it was learned.

The routing matrices have rows "after task i" (i = 1..T) and columns tasks; entries with i < j are
undefined (NaN) and the scalars average the entries below the diagonal (i > j).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import jensenshannon


def _check(R: np.ndarray) -> int:
    R = np.asarray(R)
    if R.ndim != 2 or R.shape[0] != R.shape[1] + 1:
        raise ValueError(f"R must have T + 1 rows and T columns, got shape {R.shape}")
    return R.shape[1]


def acc(R: np.ndarray) -> float:
    _check(R)
    return float(np.mean(R[-1]))


def bwt(R: np.ndarray) -> float:
    T = _check(R)
    return float(np.mean([R[T][j] - R[j + 1][j] for j in range(T - 1)]))


def fwt(R: np.ndarray) -> float:
    T = _check(R)
    return float(np.mean([R[j][j] - R[0][j] for j in range(1, T)]))


def forgetting_max(R: np.ndarray) -> float:
    T = _check(R)
    return float(np.mean([R[1:T, j].max() - R[T][j] for j in range(T - 1)]))


def forgetting_last(R: np.ndarray) -> float:
    T = _check(R)
    return float(np.mean([R[j + 1][j] - R[T][j] for j in range(T - 1)]))


def below_diagonal_mean(M: np.ndarray) -> float:
    """Mean of the entries with row > column (NaN with fewer than two tasks)."""
    M = np.asarray(M, dtype=np.float64)
    rows, cols = np.tril_indices(M.shape[0], k=-1, m=M.shape[1])
    return float(M[rows, cols].mean()) if rows.size else float("nan")


def top_k_overlap(now: np.ndarray, then: np.ndarray) -> float:
    """Mean over tokens of |TopK_now ∩ TopK_then| / k; ``now`` and ``then`` are (..., k) expert
    indices of the same tokens."""
    now = np.asarray(now).reshape(-1, np.shape(now)[-1])
    then = np.asarray(then).reshape(-1, np.shape(then)[-1])
    k = now.shape[1]
    shared = (now[:, :, None] == then[:, None, :]).any(-1).sum(-1)
    return float(shared.mean() / k)


def load_histogram(chosen: np.ndarray, n_experts: int) -> np.ndarray:
    """Share of the dispatches of (..., k) chosen experts that went to each expert."""
    counts = np.bincount(np.asarray(chosen).reshape(-1), minlength=n_experts).astype(np.float64)
    return counts / counts.sum()


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence in bits (0 = identical, 1 = disjoint support)."""
    return float(jensenshannon(p, q, base=2) ** 2)


def routing_matrices(chosen: list[list[np.ndarray]], n_experts: int) -> tuple[np.ndarray, ...]:
    """Stability and load-drift matrices (T x T) from ``chosen[i][j]``: the top-k experts of task
    j's probe tokens after learning task i (lists may be shorter than T for i < j)."""
    T = len(chosen)
    stability = np.full((T, T), np.nan)
    drift = np.full((T, T), np.nan)
    for j in range(T):
        then = chosen[j][j]
        base = load_histogram(then, n_experts)
        for i in range(j, T):
            stability[i, j] = top_k_overlap(chosen[i][j], then)
            drift[i, j] = js_divergence(load_histogram(chosen[i][j], n_experts), base)
    return stability, drift
