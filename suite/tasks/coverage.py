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


def coverage_k(p_correct: float, delta: float = COVERAGE_DELTA) -> float:
    """K(99%) unrounded, log(delta) / log(1 - p): what the papers average over seeds (Table 6's
    2.4 ± 0.2 cannot come from whole numbers). Below 1 where one expert already covers."""
    p = min(max(p_correct, 1e-12), 1.0 - 1e-12)
    return math.log(delta) / math.log1p(-p)
