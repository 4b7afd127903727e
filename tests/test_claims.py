"""Claim verdicts: reproduced, contradicted, inconclusive, by construction."""

from __future__ import annotations

import pytest

from suite.results.claims import judge, printed_resolution
from suite.results.stats import summarize
from suite.tasks.spec import Claim


def _claim(**kw):
    return Claim(metric="m", gate="g", source="Table 1", **kw)


def test_printed_resolution():
    assert printed_resolution(0.748) == 0.0005
    assert printed_resolution(765) == 0.5
    assert printed_resolution(0.1544) == 0.00005


def test_reproduced_when_the_difference_interval_contains_zero():
    ours = summarize([0.745, 0.748, 0.750, 0.747, 0.749])
    assert judge(_claim(mean=0.748, sd=0.002, n=5), ours).verdict == "reproduced"


def test_contradicted_when_far_and_certain():
    ours = summarize([0.12, 0.123, 0.125, 0.121, 0.124])
    v = judge(_claim(mean=0.006, sd=0.001, n=5), ours)
    assert v.verdict == "contradicted" and v.diff_low > 0.1


def test_inconclusive_when_detectably_different_but_within_tolerance():
    ours = summarize([0.980, 0.979, 0.981, 0.980, 0.980])
    assert judge(_claim(mean=0.994, n=1), ours).verdict == "inconclusive"


def test_single_run_claims_use_a_prediction_interval():
    ours = summarize([0.90, 0.94, 0.92, 0.96, 0.93])
    # 0.97 is outside our CI of the mean but a plausible single run
    assert judge(_claim(mean=0.97, n=1), ours).verdict == "reproduced"


def test_upper_bound_claims():
    ours = summarize([44, 45, 43, 44, 44])
    assert judge(_claim(mean=100, bound="at-most"), ours).verdict == "reproduced"
    assert judge(_claim(mean=20, bound="at-most"), ours).verdict == "contradicted"


def test_missing_and_too_few_seeds():
    assert judge(_claim(mean=1.0), None).verdict == "missing"
    assert judge(_claim(mean=1.0), summarize([1.0])).verdict == "inconclusive"


def test_versus_claims_judge_the_paired_difference():
    better = _claim(mean=0.0, versus="h", bound="at-least", tolerance=0.02)
    assert better.subject == "g − h"
    ahead = summarize([0.05, 0.07, 0.06, 0.04, 0.06])  # g - h per seed
    behind = summarize([-0.10, -0.12, -0.11, -0.09, -0.10])
    assert judge(better, ahead).verdict == "reproduced"
    assert judge(better, behind).verdict == "contradicted"


def test_versus_needs_a_gate():
    import pydantic

    with pytest.raises(pydantic.ValidationError, match="versus"):
        Claim(metric="m", interaction=("a", "b"), versus="h", mean=0.0, source="x")


def test_aggregate_pairs_versus_claims_by_seed():
    from suite.results.aggregate import aggregate
    from tests.synthetic import synthetic_records

    records = synthetic_records(n_gates=3, n_tasks=1, n_seeds=4)
    names = sorted({r.gate.id for r in records} - {"affinity"})
    claim = Claim(
        gate=names[-1], versus="affinity", metric="acc", mean=0.0, bound="at-least",
        source="synthetic",
    )  # fmt: skip
    for r in records:
        r.task.claims[:] = [claim]
    verdict = aggregate(records).tasks[0].claims[0]
    by_seed = {
        g: {r.seed_index: r.metrics["acc"] for r in records if r.gate.id == g}
        for g in (names[-1], "affinity")
    }
    diffs = [by_seed[names[-1]][s] - by_seed["affinity"][s] for s in range(4)]
    assert verdict.ours.n == 4
    assert verdict.ours.mean == pytest.approx(sum(diffs) / 4)
    assert verdict.verdict == "reproduced"
