"""Claim verdicts: equivalence (TOST) for point claims, one-sided tests for bounds and superiority,
resolution from the number as printed, derived quantities per seed, and Holm's correction."""

from __future__ import annotations

import math

import pydantic
import pytest
from scipy import stats

from suite.results.claims import holm, judge
from suite.results.stats import summarize
from suite.tasks.coverage import coverage_k
from suite.tasks.spec import Claim, parse_printed


def _claim(**kw):
    return Claim(metric="m", gate="g", source="Table 1", **kw)


def test_the_printed_number_gives_the_resolution():
    assert _claim(mean="0.748").resolution == pytest.approx(0.0005)
    assert _claim(mean="0.500").resolution == pytest.approx(0.0005)  # trailing zeros count
    assert _claim(mean="100%").mean == 1.0 and _claim(mean="100%").resolution == 0.005
    assert _claim(mean="80.1%").mean == pytest.approx(0.801)
    assert _claim(mean="80.1%").resolution == pytest.approx(0.0005)
    assert _claim(mean="124x").mean == 124 and _claim(mean="124x").resolution == 0.5
    assert _claim(mean="+0.000").mean == 0.0 and _claim(mean="−0.000").resolution == 0.0005
    assert _claim(mean=0.748).resolution == 0.0  # a bare float: no known resolution
    assert _claim(mean=0.748, decimals=3).resolution == pytest.approx(0.0005)
    assert parse_printed("6.0") == (6.0, 1, 1.0)
    with pytest.raises(pydantic.ValidationError, match="not a printed number"):
        _claim(mean="about 0.7")


def test_a_point_claim_is_reproduced_only_inside_the_margin():
    # ours: mean 0.748, sd 0.0015811 (n 5); claim 0.748 ± 0.002 (n 5), printed to 3 decimals.
    ours = summarize([0.746, 0.747, 0.748, 0.749, 0.750])
    v = judge(_claim(mean="0.748", sd=0.002, n=5, tolerance=0.02), ours)
    se = math.sqrt(0.0015811388**2 / 5 + 0.002**2 / 5)
    half = stats.t.ppf(0.95, 4) * se + 0.0005  # the 90% half-width plus the printed slack
    assert v.verdict == "reproduced" and v.detectable == pytest.approx(half, rel=1e-6)
    assert v.diff_low == pytest.approx(-half, abs=1e-9)
    assert v.p_value < 0.05 and v.tolerance == 0.02


def test_a_noisy_run_spanning_two_margins_is_inconclusive_not_reproduced():
    # 0.80 with sd 0.05 over 5 seeds against 0.80 ± 0.001 (n 5), margin 0.02: the interval spans
    # about ±0.048, more than twice the margin each way
    ours = summarize([0.74, 0.76, 0.80, 0.84, 0.86])
    v = judge(_claim(mean="0.80", sd=0.001, n=5, tolerance=0.02), ours)
    assert v.verdict == "inconclusive"
    assert v.diff_high > 0.04 and v.diff_low < -0.04
    assert "cannot be reproduced with them" in v.detail


def test_a_100_percent_claim_against_50_percent_is_contradicted():
    ours = summarize([0.49, 0.50, 0.51, 0.50, 0.50])
    v = judge(_claim(mean="100%", n=1, bound="at-least", tolerance=0.05), ours)
    assert v.verdict == "contradicted" and v.diff_high < -0.05


def test_a_superiority_claim_straddling_zero_is_inconclusive():
    better = _claim(mean=0.0, versus="h", bound="at-least", tolerance=0.0)
    assert better.subject == "g − h"
    straddles = summarize([0.021, -0.019, 0.001, 0.025, -0.023])  # +0.001 ± 0.02
    assert judge(better, straddles).verdict == "inconclusive"
    ahead = summarize([0.05, 0.07, 0.06, 0.04, 0.06])
    behind = summarize([-0.10, -0.12, -0.11, -0.09, -0.10])
    assert judge(better, ahead).verdict == "reproduced"
    assert judge(better, behind).verdict == "contradicted"


def test_a_point_claim_far_and_certain_is_contradicted():
    ours = summarize([0.12, 0.123, 0.125, 0.121, 0.124])
    v = judge(_claim(mean="0.006", sd=0.001, n=5, tolerance=0.01), ours)
    assert v.verdict == "contradicted" and v.diff_low > 0.1 and v.p_value < 1e-6


def test_a_real_small_difference_within_the_margin_is_reproduced():
    # the old rule ("the interval contains 0") could never call this agreement
    ours = summarize([0.980, 0.979, 0.981, 0.980, 0.980])
    v = judge(_claim(mean="0.994", sd=0.001, n=5, tolerance=0.02), ours)
    assert v.verdict == "reproduced" and v.diff_high < 0


def test_single_run_claims_use_a_prediction_interval():
    ours = summarize([0.90, 0.94, 0.92, 0.96, 0.93])
    v = judge(_claim(mean="0.97", n=1, tolerance=0.1), ours)
    se = math.sqrt(ours.sd**2 / 5 + ours.sd**2)  # one more run of ours
    assert v.detectable == pytest.approx(stats.t.ppf(0.95, 4) * se + 0.005, rel=1e-6)
    assert v.verdict == "reproduced"


def test_upper_bound_claims():
    ours = summarize([44, 45, 43, 44, 44])
    assert judge(_claim(mean="100", bound="at-most", tolerance=0), ours).verdict == "reproduced"
    assert judge(_claim(mean="20", bound="at-most", tolerance=1), ours).verdict == "contradicted"
    assert judge(_claim(mean="44", bound="at-most", tolerance=0), ours).verdict == "inconclusive"


def test_missing_too_few_seeds_and_not_comparable():
    assert judge(_claim(mean=1.0), None).verdict == "missing"
    assert judge(_claim(mean=1.0), summarize([1.0])).verdict == "inconclusive"
    gpu = _claim(mean="51.2", not_comparable="a GPU fp16 latency; ours is one CPU thread")
    v = judge(gpu, summarize([60.0, 61.0]))
    assert v.verdict == "not-comparable" and "GPU" in v.detail


def test_the_default_margin_says_it_is_a_default():
    v = judge(_claim(mean="0.5"), summarize([0.5, 0.5, 0.5]))
    assert v.tolerance == pytest.approx(0.025) and "default" in v.tolerance_basis


def test_holm_keeps_only_what_survives_the_family_of_tests():
    base = _claim(mean="0.5", tolerance=0.0)
    from dataclasses import replace as dc_replace

    made = [judge(base, summarize([0.6, 0.61, 0.59]))]  # strongly contradicted
    made = [dc_replace(made[0], p_value=p) for p in (0.001, 0.02, 0.03, 0.04)]
    out = holm(made)
    # step-down: 4·0.001 = 0.004 ✓; 3·0.02 = 0.06 ✗, and every later one too
    assert [v.holm for v in out] == ["contradicted"] + ["inconclusive after Holm"] * 3
    assert holm([dc_replace(made[0], verdict="inconclusive", p_value=None)])[0].holm == (
        "inconclusive"
    )


def test_derived_claims_need_one_gate_and_one_derivation():
    with pytest.raises(pydantic.ValidationError, match="derives from a gate"):
        Claim(metric="m", interaction=("a", "b"), versus="h", mean=0.0, source="x")
    with pytest.raises(pydantic.ValidationError, match="derives one quantity"):
        _claim(mean="1", versus="h", ratio_to="h")


def test_coverage_k_is_unrounded():
    assert coverage_k(0.748) == pytest.approx(math.log(0.01) / math.log(0.252))  # 3.34
    assert coverage_k(0.006) == pytest.approx(765.2, abs=0.1)
    assert coverage_k(0.858) == pytest.approx(2.36, abs=0.01)


def _records_with_claims(claims):
    from tests.synthetic import synthetic_records

    records = synthetic_records(n_gates=3, n_tasks=1, n_seeds=4)
    for r in records:
        r.task.claims[:] = claims
    return records


def test_aggregate_derives_quantities_per_seed():
    from suite.results.aggregate import aggregate

    records = _records_with_claims([])
    names = sorted({r.gate.id for r in records} - {"affinity"})
    g, ref, top = names[-1], "affinity", names[0]
    claims = [
        Claim(gate=g, versus=ref, metric="acc", mean=0.0, bound="at-least", source="s"),
        Claim(gate=g, ratio_to=ref, metric="acc", mean="2x", source="s"),
        Claim(gate=g, gap=(ref, top), metric="acc", mean="75%", source="s"),
        Claim(gate=g, coverage_of="acc", metric="k", mean="3.0", source="s"),
    ]
    records = _records_with_claims(claims)
    by_seed = {
        gate: {r.seed_index: r.metrics["acc"] for r in records if r.gate.id == gate}
        for gate in (g, ref, top)
    }
    verdicts = aggregate(records).tasks[0].claims
    expected = [
        [by_seed[g][s] - by_seed[ref][s] for s in range(4)],
        [by_seed[g][s] / by_seed[ref][s] for s in range(4)],
        [(by_seed[g][s] - by_seed[ref][s]) / (by_seed[top][s] - by_seed[ref][s]) for s in range(4)],
        [coverage_k(by_seed[g][s]) for s in range(4)],
    ]
    for verdict, values in zip(verdicts, expected, strict=True):
        assert verdict.ours.n == 4
        assert verdict.ours.mean == pytest.approx(sum(values) / 4)
        assert verdict.holm  # every judged claim carries its Holm verdict


def test_a_verdict_names_its_setting():
    from suite.results.claims import verdict_label

    assert verdict_label("contradicted", "same") == "contradicted"
    assert verdict_label("contradicted", "reduced-scale") == "not reproduced at reduced scale"
    assert verdict_label("reproduced", "reduced-scale") == "holds at reduced scale"
    assert verdict_label("contradicted", "transfer") == "fails in transfer"
    assert verdict_label("contradicted", "reduced-scale", general=True) == "contradicted"
    assert verdict_label("not-comparable", "transfer") == "not-comparable"


def test_the_facts_claims_are_judged_at_a_reduced_scale(tasks):
    """The DeltaNet-LoRA preprint's numbers come from OLMoE-1B-7B: on GateBench's small base a
    difference reads 'not reproduced at reduced scale', except for the control it states
    generally (an updater-less model is at chance whatever its size)."""
    for task_id in ("facts/sliding-window", "facts/full-attention", "facts/templated"):
        task = tasks[task_id]
        assert task.relation == "reduced-scale" and "OLMoE-1B-7B" in task.paper_setting
    general = [c for c in tasks["facts/full-attention"].claims if c.general]
    assert [c.gate for c in general] == ["no-updater"]
    for task_id in ("continual/kv-maps", "continual/languages", "continual/permuted"):
        assert tasks[task_id].relation == "transfer"
    assert tasks["transition/anticipation"].relation == "same"
