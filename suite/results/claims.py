"""Verdicts on published claims: reproduced, contradicted, inconclusive (or missing).

The question asked of each claim is whether our runs and the paper's number could come from the
same distribution of runs. With d = ours - claimed:

* the standard error combines our seed spread with the claim's own: sd_c^2 / n_c when the paper
  reports n >= 2 runs, or one run's spread (our sd) when the claim is a single run, so a single-run
  claim is tested against our prediction interval for one more run;
* half a unit of the claim's last printed decimal is added, because "0.000" means "< 0.0005";
* reproduced: the 95% interval of d contains 0;
  contradicted: it excludes 0 and lies entirely beyond the tolerance (default 5% of the claim);
  inconclusive: anything else (a difference that is detectable but within the tolerance, or fewer
  than two seeds of ours);
* a claim with ``bound: at-most`` ("complete by step 600") is reproduced when the interval of d
  reaches 0 or below, contradicted when it lies wholly above the tolerance (``at-least`` mirrors);
* a claim with ``versus`` ("better than seq-lora") is judged on the per-seed paired difference
  gate - versus against its ``mean`` (a bound, so no paper spread and no printed resolution);
* missing: the gate has no successful runs; not-comparable: the runs used other settings than the
  paper's (e.g. the smoke profile), so no verdict is given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from suite.results.stats import LEVEL, Summary, t_quantile
from suite.tasks.spec import Claim

DEFAULT_RELATIVE_TOLERANCE = 0.05

VERDICTS = ("reproduced", "contradicted", "inconclusive", "missing", "not-comparable")


@dataclass(frozen=True)
class ClaimVerdict:
    claim: Claim
    verdict: str
    ours: Summary | None
    diff_low: float | None = None
    diff_high: float | None = None
    detail: str = ""

    @property
    def subject(self) -> str:
        return self.claim.subject

    def as_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "metric": self.claim.metric,
            "claimed_mean": self.claim.mean,
            "claimed_sd": self.claim.sd,
            "claimed_n": self.claim.n,
            "source": self.claim.source,
            "note": self.claim.note,
            "verdict": self.verdict,
            "ours": self.ours.as_dict() if self.ours else None,
            "diff_low": self.diff_low,
            "diff_high": self.diff_high,
            "detail": self.detail,
        }


def printed_resolution(value: float) -> float:
    """Half a unit of the last decimal in the shortest printed form of ``value`` (0 for a
    claim of exactly 0, whose printed precision a float does not keep)."""
    if value == 0:
        return 0.0
    exponent = Decimal(repr(float(value))).normalize().as_tuple().exponent
    return 0.5 * 10.0 ** min(int(exponent), 0) if isinstance(exponent, int) else 0.0


def judge(claim: Claim, ours: Summary | None) -> ClaimVerdict:
    claimed = float(claim.mean)
    if ours is None:
        return ClaimVerdict(claim, "missing", None, detail="no successful runs to compare with")
    if ours.n < 2 or ours.sd is None:
        return ClaimVerdict(claim, "inconclusive", ours, detail="fewer than two seeds of ours")
    diff = ours.mean - claimed
    n_c, sd_c = claim.n, claim.sd
    if claim.versus is not None:  # a qualitative comparison: a bound, no run of the paper's
        claim_var, printed = 0.0, 0.0
    elif n_c is not None and n_c >= 2 and sd_c is not None:
        claim_var, printed = sd_c**2 / n_c, printed_resolution(claimed)
    else:  # a single run of the paper: one more draw from our spread
        claim_var, printed = ours.sd**2, printed_resolution(claimed)
    se = math.sqrt(ours.sd**2 / ours.n + claim_var)
    half = t_quantile(0.5 + LEVEL / 2.0, ours.n - 1) * se + printed
    low, high = diff - half, diff + half
    tolerance = claim.tolerance
    if tolerance is None:
        tolerance = DEFAULT_RELATIVE_TOLERANCE * abs(claimed)
    bound = claim.bound
    if bound == "at-most":  # consistent when some value in the interval has ours <= claimed
        agrees, contradicts = low <= 0.0, low > tolerance
    elif bound == "at-least":
        agrees, contradicts = high >= 0.0, high < -tolerance
    else:
        agrees, contradicts = low <= 0.0 <= high, low > tolerance or high < -tolerance
    verdict = "reproduced" if agrees else "contradicted" if contradicts else "inconclusive"
    detail = f"ours - claimed = {diff:+.4g}, 95% interval [{low:+.4g}, {high:+.4g}]"
    return ClaimVerdict(claim, verdict, ours, low, high, detail)
