"""The shipped example submission (``submissions/selective-memory``) runs as a user would run it:
its manifest loads, its code is imported and inspected in a confined worker, it passes every
conformance check and is ranked beside a baseline on the same secret seeds (on the public seeds it
is shown, never ranked)."""

from __future__ import annotations

from pathlib import Path

from suite.gates.entries import get_gate
from suite.results.aggregate import aggregate
from suite.runs.records import iter_records
from suite.runs.setup import SweepOptions
from suite.runs.submit import load_submissions
from suite.runs.sweep import Sweep

EXAMPLE = Path(__file__).resolve().parent.parent / "submissions" / "selective-memory"
ANT = "transition/anticipation"


def test_the_example_submission_is_checked_and_ranked(tasks, tmp_path):
    options = SweepOptions(profile="smoke", results=tmp_path, workers=2, seeds=2, salt="5eed5a17")
    loaded = load_submissions([EXAMPLE], [tasks[ANT]], options)
    assert loaded.errors == []
    entry = loaded.entries[0]
    assert (entry.id, entry.kind, entry.causal) == ("selective-memory", "router", True)
    summary = Sweep(options, log=lambda m: None).run([tasks[ANT]], [get_gate("affinity"), entry])
    assert (summary.ok, summary.failed, summary.rejected) == (4, 0, 0), summary.failures
    records = list(iter_records(tmp_path))
    mine = [r for r in records if r.gate.id == "selective-memory"]
    assert all(r.gate.origin == "submission" and r.gate.source_hash for r in mine)
    checks = {c["name"]: c["passed"] for c in mine[0].conformance["checks"]}
    assert checks["causality"] and checks["streaming"] and checks["parameter_budget"]
    result = aggregate(records).tasks[0].gates["selective-memory"]
    assert result.status == "ok" and result.cells["acc_transition"].rank is not None
    public = [r.model_copy(update={"provenance": r.provenance.model_copy(update={"salt": ""})})
              for r in records]  # fmt: skip
    shown = aggregate(public).tasks[0].gates["selective-memory"]
    assert shown.status == "public-seeds" and shown.cells["acc_transition"].rank is None
    assert "secret seeds" in shown.reasons[-1]
