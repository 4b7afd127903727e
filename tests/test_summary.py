"""The committed summary built from real records: its leaderboards and claims are the aggregate's
own numbers, and the pages rendered from it show them."""

from __future__ import annotations

import json

import pytest

from suite.results.aggregate import aggregate
from suite.results.summary import build_summary, dump, render_results_page


@pytest.fixture(scope="module")
def smoke_results(tmp_path_factory):
    from suite.gates.entries import get_gate
    from suite.runs.setup import SweepOptions
    from suite.runs.sweep import Sweep
    from suite.tasks.loading import load_task

    results = tmp_path_factory.mktemp("summary") / "results"
    options = SweepOptions(results=results, workers=0, profile="smoke")
    Sweep(options, log=lambda msg: None).run(
        [load_task("transition/domain-switch")], [get_gate(g) for g in ("affinity", "beta")]
    )
    return results


def test_the_leaderboard_carries_the_aggregates_numbers(smoke_results):
    from suite.runs.records import iter_records

    summary = build_summary(smoke_results, "smoke")
    assert json.loads(dump(summary)) == summary  # what is committed reads back unchanged
    (task,) = summary["leaderboard"]
    assert task["task"] == "transition/domain-switch" and task["profile"] == "smoke"
    assert task["metrics"][0] == "acc_all"  # the primary metric first
    (result,) = aggregate(list(iter_records(smoke_results))).tasks
    assert [g["gate"] for g in task["gates"]] == [g.gate.id for g in result.ordered_gates()]
    for row in task["gates"]:
        cell = result.gates[row["gate"]].cells["acc_all"]
        mean, low, high = row["values"]["acc_all"]
        assert mean == pytest.approx(cell.summary.mean, abs=1e-6)
        assert (low, high) == pytest.approx((cell.summary.ci_low, cell.summary.ci_high), abs=1e-6)
        assert row["rank"] == cell.rank and row["seeds"] == len(cell.values)


def test_the_results_page_shows_each_gate_and_claim_with_its_setting(smoke_results):
    summary = build_summary(smoke_results, "smoke", smoke_results, "smoke")
    page = render_results_page(summary)
    row = summary["leaderboard"][0]["gates"][0]
    mean, low, high = row["values"]["acc_all"]
    assert f"`{row['gate']}` | {row['status']} |" in page
    assert f"{mean:.3f} [{low:.3f}, {high:.3f}]" in page
    claims = summary["claim_verdicts"]
    assert claims and {c["label"] for c in claims} == {"not-comparable"}  # smoke is not the paper
    assert "#### Claims of `transition/domain-switch`" in page
    assert f"The paper's setting: {claims[0]['setting']}. Ours: the paper's own setting." in page
    assert (
        f"| {claims[0]['subject']} | {claims[0]['metric']} | {claims[0]['claimed']} | — |" in page
    )
