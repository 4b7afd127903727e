"""Verdicts on published claims: equivalence and superiority tests a statistician would sign.

With d = ours − claimed (ours: a gate's metric over seeds, or a quantity derived from it per seed:
a paired difference, a ratio, a share of a gap, a coverage K), and m the claim's declared margin:

* the standard error combines our seed spread with the claim's own: sd_c² / n_c when the paper
  reports n ≥ 2 runs with a spread, or one run's spread (our sd) when the claim is a single run, so
  a single-run claim is tested against our prediction interval for one more run;
* half a unit of the paper's last printed decimal (from the number as printed: "0.748" means
  [0.7475, 0.7485)) widens the interval, since the paper's value is known only to that resolution;
* every verdict is a one-sided t-test at level α = 0.05 (df = our seeds − 1), i.e. read off the
  90% interval of d:
  - a point claim is *reproduced* when the interval lies inside ±m (two one-sided tests, TOST),
    *contradicted* when it lies wholly outside ±m, *inconclusive* otherwise: a noisy run whose
    interval spans the margin proves nothing either way;
  - a bound (``at-least``: "better than", "100%") is reproduced when the interval lies wholly at or
    above −m, contradicted when it lies wholly below −m (``at-most`` mirrors), inconclusive when
    it straddles;
* the smallest difference our seeds could detect is the interval's half-width: a margin below it
  can never be reached, and the verdict says so;
* a task's claims are many tests: Holm's step-down correction over the task's judged claims says
  which reproduced or contradicted verdicts survive at a family-wise error of 5% (the others are
  *inconclusive after Holm*);
* missing: the gate has no successful runs; not-comparable: the runs used other settings than the
  paper's (e.g. the smoke profile), or the claim declares that no measurement of ours compares
  (another device, another quantity), with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from collections.abc import Callable

from scipy import stats

from suite.results.stats import Summary, summarize, t_quantile
from suite.runs.records import TaskRef
from suite.tasks.coverage import coverage_k
from suite.tasks.spec import Claim

ALPHA = 0.05  # each one-sided test; the interval shown is the (1 - 2·ALPHA) = 90% interval
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
    tolerance: float | None = None  # the margin used
    tolerance_basis: str = ""
    detectable: float | None = None  # the smallest |d| our seeds could detect (half-width)
    p_value: float | None = None  # of the verdict's one-sided test(s), unadjusted
    holm: str = ""  # the verdict after Holm's correction over the task's claims
    relation: str = "same"  # how our setting relates to the claim's: same | reduced-scale | transfer
    setting: str = ""  # the paper's setting of the number

    @property
    def subject(self) -> str:
        return self.claim.subject

    @property
    def label(self) -> str:
        """The verdict as it may be read: 'contradicted' only in the claim's own setting (or for
        a claim the paper states generally); at a reduced scale or in a transfer it says so."""
        return verdict_label(self.verdict, self.relation, self.claim.general)

    def as_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "metric": self.claim.metric,
            "claimed": self.claim.shown,
            "claimed_mean": self.claim.mean,
            "claimed_sd": self.claim.sd,
            "claimed_n": self.claim.n,
            "bound": self.claim.bound,
            "source": self.claim.source,
            "note": self.claim.note,
            "verdict": self.verdict,
            "label": self.label,
            "relation": self.relation,
            "setting": self.setting or None,
            "holm_verdict": self.holm or None,
            "tolerance": self.tolerance,
            "tolerance_basis": self.tolerance_basis or None,
            "detectable": self.detectable,
            "p_value": self.p_value,
            "ours": self.ours.as_dict() if self.ours else None,
            "diff_low": self.diff_low,
            "diff_high": self.diff_high,
            "detail": self.detail,
        }


LABELS = {
    "reduced-scale": {
        "reproduced": "holds at reduced scale",
        "contradicted": "not reproduced at reduced scale",
        "inconclusive": "inconclusive at reduced scale",
    },
    "transfer": {
        "reproduced": "holds in transfer",
        "contradicted": "fails in transfer",
        "inconclusive": "inconclusive in transfer",
    },
}


def verdict_label(verdict: str, relation: str, general: bool = False) -> str:
    if relation == "same" or (general and verdict == "contradicted"):
        return verdict
    return LABELS.get(relation, {}).get(verdict, verdict)


def margin(claim: Claim) -> tuple[float, str]:
    """The claim's equivalence margin and why it is that."""
    if claim.tolerance is not None:
        basis = claim.tolerance_basis or "practical"
        note = f": {claim.tolerance_note}" if claim.tolerance_note else ""
        return claim.tolerance, f"{basis}{note}"
    return (
        DEFAULT_RELATIVE_TOLERANCE * abs(claim.mean),
        "practical: GateBench's default of 5% of the claimed value",
    )


def _sf(t: float, df: int) -> float:
    """P(T >= t) for Student's t with ``df`` degrees of freedom."""
    return float(stats.t.sf(t, df))


def judge(claim: Claim, ours: Summary | None) -> ClaimVerdict:
    if claim.not_comparable:
        return ClaimVerdict(claim, "not-comparable", ours, detail=claim.not_comparable)
    if ours is None:
        return ClaimVerdict(claim, "missing", None, detail="no successful runs to compare with")
    tol, basis = margin(claim)
    if ours.n < 2 or ours.sd is None:
        return ClaimVerdict(
            claim, "inconclusive", ours, detail="fewer than two seeds of ours",
            tolerance=tol, tolerance_basis=basis,
        )  # fmt: skip
    claimed = float(claim.mean)
    diff = ours.mean - claimed
    n_c, sd_c = claim.n, claim.sd
    if n_c is not None and n_c >= 2 and sd_c is not None:
        claim_var = sd_c**2 / n_c  # the paper's runs: their standard error
    elif claim.versus is not None and claim.bound != "equal":
        claim_var = 0.0  # a qualitative comparison ("better than"): no run of the paper's
    else:  # a single run of the paper: one more draw from our spread
        claim_var = ours.sd**2
    se = math.sqrt(ours.sd**2 / ours.n + claim_var)
    df = ours.n - 1
    slack = claim.resolution
    half = t_quantile(1.0 - ALPHA, df) * se + slack
    low, high = diff - half, diff + half

    def p_above(x: float) -> float:  # one-sided p that d > x, the printed slack against it
        return 1.0 if se == 0 else _sf((diff - x - slack) / se, df)

    def p_below(x: float) -> float:  # one-sided p that d < x
        return 1.0 if se == 0 else _sf((x - diff - slack) / se, df)

    if claim.bound == "at-least":
        if low >= -tol:
            verdict, p = "reproduced", p_above(-tol)
        elif high < -tol:
            verdict, p = "contradicted", p_below(-tol)
        else:
            verdict, p = "inconclusive", None
    elif claim.bound == "at-most":
        if high <= tol:
            verdict, p = "reproduced", p_below(tol)
        elif low > tol:
            verdict, p = "contradicted", p_above(tol)
        else:
            verdict, p = "inconclusive", None
    elif -tol < low and high < tol:
        verdict, p = "reproduced", max(p_above(-tol), p_below(tol))
    elif low > tol or high < -tol:
        verdict, p = "contradicted", p_above(tol) if low > tol else p_below(-tol)
    else:
        verdict, p = "inconclusive", None
    if se == 0 and verdict != "inconclusive":
        p = 0.0  # no spread anywhere: the interval is exact
    detail = (
        f"ours − claimed = {diff:+.4g}, 90% interval [{low:+.4g}, {high:+.4g}] "
        f"(one-sided tests at 5%); margin ±{tol:.4g} ({basis})"
    )
    if verdict == "inconclusive" and claim.bound == "equal" and half >= tol:
        detail += (
            f"; our seeds detect differences of {half:.3g} or more, wider than the margin, "
            "so this claim cannot be reproduced with them"
        )
    return ClaimVerdict(
        claim, verdict, ours, low, high, detail, tol, basis, half, p
    )


def holm(verdicts: Sequence[ClaimVerdict], alpha: float = ALPHA) -> list[ClaimVerdict]:
    """Each verdict with ``holm`` set: its verdict where it survives Holm's step-down correction
    over the judged claims given (reproduced or contradicted), else 'inconclusive after Holm'."""
    tested = sorted(
        (i for i, v in enumerate(verdicts) if v.p_value is not None), key=lambda i: verdicts[i].p_value
    )
    k = len(tested)
    adjusted: dict[int, float] = {}
    running = 0.0
    for rank, i in enumerate(tested):
        running = max(running, min(1.0, (k - rank) * float(verdicts[i].p_value or 0.0)))
        adjusted[i] = running
    out = []
    for i, v in enumerate(verdicts):
        if i in adjusted:
            label = v.verdict if adjusted[i] < alpha else "inconclusive after Holm"
            out.append(replace(v, holm=label))
        else:
            out.append(replace(v, holm=v.verdict))
    return out


CellLookup = Callable[[str, str], "tuple[dict[int, float], Summary | None] | None"]
"""(gate, metric) -> that gate's values by seed and their summary, or None without runs."""


def _per_seed(cell: CellLookup, claim: Claim) -> tuple[dict[int, float] | None, str]:
    """The claim's quantity per seed from our runs (None where a gate it needs has no runs),
    and a label; derived quantities are computed seed by seed so that their spread carries the
    uncertainty of every number they are made of."""
    metric = claim.coverage_of or claim.metric
    gate = cell(claim.gate or "", metric)
    if gate is None:
        return None, ""
    values = gate[0]
    if claim.versus or claim.ratio_to:
        other = cell(claim.versus or claim.ratio_to or "", metric)
        if other is None:
            return None, ""
        theirs = other[0]
        if claim.versus:
            return {s: v - theirs[s] for s, v in values.items() if s in theirs}, "paired"
        return {s: v / theirs[s] for s, v in values.items() if theirs.get(s)}, "ratio"
    if claim.gap:
        ref, top = (cell(g, metric) for g in claim.gap)
        if ref is None or top is None:
            return None, ""
        low, high = ref[0], top[0]
        return {
            s: (v - low[s]) / (high[s] - low[s])
            for s, v in values.items()
            if s in low and s in high and high[s] != low[s]
        }, "gap"
    if claim.coverage_of:
        return {s: coverage_k(v) for s, v in values.items()}, "coverage"
    return values, ""


def task_claims(
    task: TaskRef,
    profile: str,
    cell: CellLookup,
    interaction: Callable[[Claim], Summary | None],
) -> list[ClaimVerdict]:
    """Every claim of a task judged on our runs (``cell``: a gate's values and summary for a
    metric; ``interaction``: an ablation's interaction term), or not-comparable where the runs
    were not at the paper's settings."""
    if task.spec_hash != task.paper_spec_hash:
        detail = f"profile {profile} differs from the paper's settings; run --profile paper"
        return [
            ClaimVerdict(
                c, "not-comparable", None, detail=detail,
                relation=c.relation or task.relation, setting=c.setting or task.paper_setting,
            )
            for c in task.claims
        ]  # fmt: skip
    verdicts = []
    for claim in task.claims:
        ours: Summary | None = None
        if claim.gate:
            values, kind = _per_seed(cell, claim)
            if values and kind:
                ours = summarize(list(values.values()), f"claim/{task.id}/{claim.subject}")
            elif values:
                found = cell(claim.gate, claim.metric)
                ours = found[1] if found else None
        elif claim.interaction is not None:
            ours = interaction(claim)
        verdict = judge(claim, ours)
        verdicts.append(
            replace(
                verdict,
                relation=claim.relation or task.relation,
                setting=claim.setting or task.paper_setting,
            )
        )
    return holm(verdicts)
