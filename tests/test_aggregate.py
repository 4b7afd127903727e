"""Aggregation over records: statuses, stale versions, robustness of variants, the leaderboard."""

from __future__ import annotations

import pytest

from suite.results.aggregate import aggregate
from suite.results.leaderboard import leaderboard
from tests.synthetic import synthetic_records


def test_partial_and_failed_statuses():
    records = synthetic_records(3, 1, 3)
    broken = records[-1].model_copy(update={"status": "failed", "reason": "boom", "metrics": {}})
    records[-1] = broken
    result = aggregate(records).tasks[0]
    gate = result.gates[broken.gate.id]
    assert gate.status == "partial" and gate.n_ok == 2 and gate.reasons == ["boom"]
    assert gate.cells["acc"].summary.n == 2


def test_robustness_is_the_share_of_the_base_gain_that_the_variant_keeps():
    records = synthetic_records(2, 2, 4)
    base, variant = "synthetic/task-00", "synthetic/task-01"
    out = []
    for rec in records:
        if rec.task.id == variant:
            task = rec.task.model_copy(update={"variant_of": base})
            metrics = dict(rec.metrics)
            if rec.gate.id != "affinity":  # keep half of the gain on the variant
                ref = next(
                    r.metrics["acc"] for r in records
                    if r.task.id == variant and r.gate.id == "affinity"
                    and r.seed_index == rec.seed_index
                )  # fmt: skip
                base_rec = next(
                    r for r in records
                    if r.task.id == base and r.gate.id == rec.gate.id
                    and r.seed_index == rec.seed_index
                )  # fmt: skip
                base_ref = next(
                    r.metrics["acc"] for r in records
                    if r.task.id == base and r.gate.id == "affinity"
                    and r.seed_index == rec.seed_index
                )  # fmt: skip
                metrics["acc"] = ref + 0.5 * (base_rec.metrics["acc"] - base_ref)
            rec = rec.model_copy(update={"task": task, "metrics": metrics})
        out.append(rec)
    result = aggregate(out).task(variant)
    rows = {r.gate: r for r in result.robustness}
    assert set(rows) == {
        "affinity",
        "gate-00",
    }  # every gate's score ratio; gains past the reference
    assert rows["gate-00"].retained == pytest.approx(0.5)
    assert rows["affinity"].retained is None and rows["affinity"].score_ratio is not None
    assert aggregate(out).task(base).robustness == []


def test_leaderboard_normalises_by_the_ideal_value_without_a_ceiling():
    records = synthetic_records(3, 2, 3)
    rows, scales = leaderboard(aggregate(records).tasks)
    assert {s.ceiling for s in scales} == {"ideal 1"}
    by_gate = {r.gate.id: r for r in rows}
    assert by_gate["affinity"].iqm == pytest.approx(0.0)
    assert all(r.ci_low <= r.iqm <= r.ci_high for r in rows)
    assert rows[0].rank == 1 and rows[0].iqm == max(r.iqm for r in rows)


def test_a_gate_that_fails_where_it_does_badly_is_shown_but_not_ranked():
    """The best gate's runs on one task fail: ranked on the others it would top the board, so
    it is shown with its scores, unranked, and says where; the others' ranks do not change."""
    records = synthetic_records(4, 3, 3)
    best = max({r.gate.id for r in records})  # the synthetic quality grows with the gate index
    failing = "synthetic/task-01"
    records = [
        r.model_copy(update={"status": "failed", "reason": "crashed", "metrics": {}})
        if r.gate.id == best and r.task.id == failing and r.seed_index == 2
        else r
        for r in records
    ]
    rows, _ = leaderboard(aggregate(records).tasks)
    by_gate = {r.gate.id: r for r in rows}
    assert by_gate[best].rank is None and by_gate[best].unranked == f"{failing} (some seeds failed)"
    assert by_gate[best].n_tasks == 3  # its two good seeds there still count as scores
    assert rows[-1].gate.id == best  # after every ranked gate
    ranked = [r for r in rows if r.rank is not None]
    assert len(ranked) == 3 and ranked[0].rank == 1


def test_a_family_without_a_scale_says_so_instead_of_having_no_results(tmp_path):
    """Results whose primary metric has neither a ceiling nor an ideal get no normalised board;
    the index says why rather than asking for a run. Bits per character scale to 0 bits."""
    from suite.tasks.families.lm.spec import lm_metrics
    from suite.tasks.spec import MetricInfo
    from suite.website.site import render_site

    assert lm_metrics()["bpc_transition"].ideal == 0.0 and lm_metrics()["bpc_all"].ideal == 0.0
    records = synthetic_records(3, 2, 3)
    unscaled = {**records[0].task.metrics, "acc": MetricInfo(description="accuracy")}
    records = [r.model_copy(update={"task": r.task.model_copy(update={"metrics": unscaled})})
               for r in records]  # fmt: skip
    index = render_site(aggregate(records), records, tmp_path / "site").out / "index.html"
    html = index.read_text()
    assert html.count("No normalised leaderboard") == 1  # the other families have no results
