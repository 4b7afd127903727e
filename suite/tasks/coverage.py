"""K(99%), the coverage measure of routing papers, shared by the families that report it."""

from __future__ import annotations

import math

COVERAGE_DELTA = 0.01  # K(99%): the correct expert is in a top-K draw with probability 0.99


def k_for_coverage(p_correct: float, delta: float = COVERAGE_DELTA) -> float:
    """Experts needed so that a draw of K holds the correct one with probability 1 - delta."""
    p = min(max(p_correct, 1e-12), 1.0)
    if p >= 1.0 - delta:
        return 1.0
    return float(math.ceil(math.log(delta) / math.log1p(-p)))
