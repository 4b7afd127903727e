"""An untrusted gate runs in a process of its own: it never holds the task's labels, what it finds
in its own interpreter is useless, what it patches there does not reach the harness, and an honest
gate's numbers are the same through the proxy as in the harness's process."""

from __future__ import annotations

import gc
import time
from pathlib import Path

import torch

from suite.gates.entries import get_gate
from suite.results.aggregate import aggregate
from suite.runs.records import iter_records
from suite.runs.setup import SweepOptions
from suite.runs.submit import load_submissions
from suite.runs.sweep import Sweep
from suite.seeding import RunSeeds, seeded_global_rng
from suite.tasks.family import RunContext, get_family

ANT = "transition/anticipation"
HOSTILE = Path(__file__).resolve().parent / "fixtures" / "hostile"


def _run_here(spec, gate_id: str, salt: str = ""):
    """The gate in this very process (what the harness no longer does for untrusted code)."""
    spec = spec.for_profile("smoke")
    family = get_family(spec.family)
    seeds = RunSeeds(spec.master_seed, spec.id, 0, salt)
    with seeded_global_rng(seeds.init):
        gate = get_gate(gate_id).build(family.task_info(spec))
    ctx = RunContext(seeds=seeds, device=torch.device("cpu"), deadline=time.monotonic() + 300)
    return family.run(spec, gate, ctx)


def test_the_gate_process_holds_no_label_tensor(sweep, tasks):
    # the probe counts label-like tensors among every object of its process (gc.get_objects())
    here = _run_here(tasks[ANT], "test-label-probe")
    assert here.diagnostics["label_tensors_seen"] > 0  # the probe finds them where they are
    _, records = sweep([ANT], ["test-label-probe"], seeds=1)
    (record,) = records
    assert record.status == "ok", record.reason
    assert "own process" in record.provenance.sandbox
    assert record.diagnostics["label_tensors_seen"] == 0


def test_labels_from_frames_or_the_gc_change_no_number(sweep, tasks):
    cheats = ["test-labels-from-frames", "test-labels-from-gc"]
    for cheat in cheats:  # in the harness's process both cheats would be near perfect
        assert _run_here(tasks[ANT], cheat).metrics["acc_all"] > 0.99
    thresholds = gc.get_threshold()
    try:  # whatever the collector did before (other tests), the gc cheat still finds them
        gc.set_threshold(50, 2, 2)
        assert _run_here(tasks[ANT], "test-labels-from-gc").metrics["acc_all"] > 0.99
    finally:
        gc.set_threshold(*thresholds)
    _, records = sweep([ANT], ["test-honest-linear", *cheats], seeds=2)
    by_gate: dict[str, dict[int, dict]] = {}
    for r in records:
        assert r.status == "ok", r.reason
        by_gate.setdefault(r.gate.id, {})[r.seed_index] = r.metrics
    honest = by_gate["test-honest-linear"]
    assert honest[0]["acc_all"] < 0.9
    for cheat in cheats:  # bit-identical to the honest twin: the cheat found nothing to read
        assert by_gate[cheat] == honest


def test_patching_the_harness_at_import_is_rejected_anyway(tasks, tmp_path):
    options = SweepOptions(profile="smoke", results=tmp_path, workers=2, seeds=1)
    loaded = load_submissions([HOSTILE / "patches-harness"], [tasks[ANT]], options)
    assert loaded.errors == []
    summary = Sweep(options, log=lambda m: None).run([tasks[ANT]], loaded.entries)
    assert summary.rejected == 1
    (record,) = iter_records(tmp_path)
    assert record.status == "rejected" and "causality" in record.reason


def test_baselines_through_the_proxy_give_the_same_numbers(sweep, tmp_path):
    gates = ["beta+pi+ant", "affinity"]
    _, here = sweep([ANT, "transition/precision-shift"], gates, results=tmp_path / "a", seeds=1)
    _, proxied = sweep(
        [ANT, "transition/precision-shift"],
        gates,
        results=tmp_path / "b",
        seeds=1,
        isolate_baselines=True,
    )
    assert all("own process" in r.provenance.sandbox for r in proxied)
    assert all("own process" not in r.provenance.sandbox for r in here)

    def numbers(records):
        return {(r.task.id, r.gate.id, r.seed_index): (r.metrics, r.arrays) for r in records}

    assert numbers(here) == numbers(proxied)


def test_a_fresh_interpreter_hosts_the_gate_where_no_forkserver_is_at_hand(sweep, tmp_path):
    # the inline executor (and a Dask worker) start the gate's process with `python -m`
    _, forked = sweep([ANT], ["test-honest-linear"], results=tmp_path / "a", seeds=1)
    _, fresh = sweep([ANT], ["test-honest-linear"], results=tmp_path / "b", seeds=1, workers=0)
    (a,), (b,) = forked, fresh
    assert a.status == b.status == "ok", (a.reason, b.reason)
    assert "own process" in b.provenance.sandbox
    assert a.metrics == b.metrics


def test_honest_submissions_are_ranked_with_the_numbers_they_get_in_the_harness(tasks, tmp_path):
    from suite.gates.entries import gates
    from suite.gates.submissions import register_submission

    example = HOSTILE.parents[2] / "submissions" / "selective-memory"
    folders = [example, HOSTILE / "honest-gru"]
    salt = "5eed5a17"  # a leaderboard's secret seeds: where submissions are ranked
    options = SweepOptions(profile="smoke", results=tmp_path, workers=2, seeds=2, salt=salt)
    loaded = load_submissions(folders, [tasks[ANT]], options)
    assert loaded.errors == []
    summary = Sweep(options, log=lambda m: None).run([tasks[ANT]], loaded.entries)
    assert (summary.ok, summary.rejected, summary.failed) == (4, 0, 0), summary.failures
    records = list(iter_records(tmp_path))
    board = aggregate(records).tasks[0]
    assert board.seed_mode == "secret"
    for gres in board.gates.values():
        assert gres.status == "ok" and gres.cells["acc_transition"].rank is not None
    for record in (r for r in records if r.seed_index == 0):
        assert "own process" in record.provenance.sandbox and record.audits
        register_submission(next(f for f in folders if f.name == record.gate.id))  # trusted here
        try:
            assert _run_here(tasks[ANT], record.gate.id, salt).metrics == record.metrics
        finally:
            gates.remove(record.gate.id)
