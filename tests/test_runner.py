"""End-to-end sweeps on the smoke profile: records, caching, determinism, failure handling."""

from __future__ import annotations

import os

import pytest

from suite.results.aggregate import aggregate
from suite.runs.records import read_record
from suite.seeding import RunSeeds
from suite.tasks.family import get_family
from tests.confinement import need_landlock

ANT = "transition/anticipation"


def _by_key(records):
    return {(r.task.id, r.gate.id, r.seed_index): r for r in records}


def test_sweep_writes_records_with_metrics_arrays_and_provenance(sweep, tasks):
    summary, records = sweep([ANT], ["affinity", "beta+ant", "oracle"])
    assert (summary.ok, summary.failed, summary.cached) == (6, 0, 0)
    assert len(records) == 6 and all(r.ok for r in records)
    rec = _by_key(records)[(ANT, "beta+ant", 1)]
    assert set(rec.metrics) == set(tasks[ANT].metrics)
    assert 0.0 <= rec.metrics["acc_transition"] <= 1.0
    curve = rec.arrays["p_correct_by_position"]
    assert curve.coords == {"position t": list(range(11))} and curve.marks == {"transition": 5}
    assert len(curve.values) == 11 and all(0.0 <= v <= 1.0 for v in curve.values)
    assert rec.task.metrics["p_correct_by_position"].kind == "curve"
    assert set(rec.arrays) == set(rec.task.array_metrics())
    assert rec.n_params > 0 and rec.wall_time_s > 0 and rec.peak_rss_mb > 0
    prov = rec.provenance
    assert prov.torch.startswith("2.13") and prov.torch_threads == 1
    assert prov.seeds["data"] == RunSeeds(0, ANT, 1).data
    spec = tasks[ANT].for_profile("smoke")
    expected = get_family(spec.family).eval_dataset(spec, RunSeeds(0, ANT, 1))._fingerprint
    assert prov.data_fingerprint == expected
    assert rec.gate.source_hash and rec.task.spec_hash == spec.spec_hash()
    assert rec.conformance["checks"]
    # the same seed means the same data for every gate (paired comparisons)
    fingerprints = {r.provenance.data_fingerprint for r in records if r.seed_index == 1}
    assert len(fingerprints) == 1


def test_rerun_is_a_cache_hit_and_an_interrupted_sweep_resumes(sweep):
    first, records = sweep([ANT], ["affinity", "beta"])
    assert first.ok == 4
    again, _ = sweep([ANT], ["affinity", "beta"])
    assert (again.cached, again.ok) == (4, 0)
    lost = _by_key(records)[(ANT, "beta", 0)]
    path = next(r.path for r in again.plan.runs if r.key == lost.key)
    path.unlink()  # as if the sweep had stopped before this run
    resumed, _ = sweep([ANT], ["affinity", "beta"])
    assert (resumed.cached, resumed.ok) == (3, 1)


def test_reruns_are_bit_identical_across_folders_and_executors(sweep, tmp_path):
    gates = ["affinity", "beta+pi+ant", "mean-pool"]
    _, a = sweep([ANT, "transition/precision-shift"], gates, results=tmp_path / "a")
    _, b = sweep([ANT, "transition/precision-shift"], gates, results=tmp_path / "b")
    _, c = sweep(
        [ANT, "transition/precision-shift"], gates, results=tmp_path / "c", executor="inline"
    )
    a, b, c = _by_key(a), _by_key(b), _by_key(c)
    assert a.keys() == b.keys() == c.keys() and len(a) >= 8
    for key in a:
        results = [run[key].deterministic_results() for run in (a, b, c)]
        assert results[0][0] == a[key].metrics  # every transition metric is deterministic
        assert results[0] == results[1] == results[2], key


def test_a_changed_spec_misses_the_cache(sweep, tasks, tmp_path):
    sweep([ANT], ["affinity"])
    task = tasks[ANT]
    tasks[ANT] = task.model_copy(update={"master_seed": 1})
    try:
        summary, records = sweep([ANT], ["affinity"])
    finally:
        tasks[ANT] = task
    assert (summary.cached, summary.ok) == (0, 2)
    assert len(records) == 4  # the old version's records stay, set aside as stale
    agg = aggregate(records)
    assert agg.tasks[0].stale_records == 2


def test_one_gates_hyper_parameters_leave_the_other_gates_cached(sweep, tasks):
    sweep([ANT], ["affinity", "beta"])
    task = tasks[ANT]
    tasks[ANT] = task.model_copy(update={"gate_params": {"beta": {"beta_init": 0.5}}})
    try:
        summary, records = sweep([ANT], ["affinity", "beta"])
    finally:
        tasks[ANT] = task
    assert (summary.cached, summary.ok) == (2, 2)  # affinity's two seeds cached, beta's rerun
    assert {r.gate.params.get("beta_init") for r in records if r.gate.id == "beta"} == {None, 0.5}


def test_failures_are_recorded_and_the_sweep_goes_on(sweep):
    gates = ["affinity", "test-raises", "test-nan", "test-sleeps", "test-hog"]
    summary, records = sweep([ANT], gates, seeds=1, time_limit_s=3, memory_mb=768)
    by_gate = {r.gate.id: r for r in records}
    assert by_gate["affinity"].ok
    assert by_gate["test-raises"].status == "failed"
    assert "RuntimeError: deliberate failure in training" in by_gate["test-raises"].reason
    assert "Traceback" in by_gate["test-raises"].error
    assert "NonFiniteError" in by_gate["test-nan"].reason
    assert "time limit of 3 s" in by_gate["test-sleeps"].reason
    assert "memory limit of 768 MiB" in by_gate["test-hog"].reason
    assert summary.failed == 4 and summary.ok == 1
    # failed runs are never served from the cache
    again, _ = sweep([ANT], ["affinity", "test-raises"], seeds=1, time_limit_s=3)
    assert (again.cached, again.failed) == (1, 1)


def test_nonconformant_gates_are_rejected_and_never_ranked(sweep):
    summary, records = sweep([ANT], ["affinity", "test-peek-future", "test-batch-mix", "oracle"])
    assert summary.rejected == 4
    rejected = [r for r in records if r.status == "rejected"]
    assert {r.gate.id for r in rejected} == {"test-peek-future", "test-batch-mix"}
    assert all(not r.metrics for r in rejected)
    peek = next(r for r in rejected if r.gate.id == "test-peek-future")
    assert "reads the future" in peek.reason
    result = aggregate(records).tasks[0]
    assert result.gates["test-peek-future"].status == "rejected"
    assert result.gates["oracle"].status == "ceiling"
    primary = result.task.primary_metric
    assert result.gates["oracle"].cells[primary].rank is None
    assert result.gates["test-peek-future"].cells[primary].rank is None
    assert result.gates["affinity"].cells[primary].rank == 1


def test_records_are_written_atomically(sweep):
    summary, _ = sweep([ANT], ["affinity"], seeds=1)
    folder = summary.plan.runs[0].path.parent
    assert not list(folder.glob(".*.tmp"))
    assert read_record(summary.plan.runs[0].path) is not None


def test_a_run_cannot_write_into_the_results_folder(sweep, tasks, tmp_path):
    need_landlock(1, "confinement")
    results = tmp_path / "results"
    forged = results / "runs" / "forged.json"
    task = tasks[ANT]
    tasks[ANT] = task.model_copy(update={"gate_params": {"test-writes": {"target": str(forged)}}})
    try:
        _, records = sweep([ANT], ["affinity", "test-writes"], seeds=1, results=results)
    finally:
        tasks[ANT] = task
    by_gate = {r.gate.id: r for r in records}
    assert by_gate["affinity"].ok
    assert by_gate["affinity"].provenance.sandbox.startswith("landlock")
    assert by_gate["test-writes"].status == "failed"
    assert "PermissionError" in by_gate["test-writes"].reason
    assert not forged.exists()


def test_non_finite_outputs_never_reach_a_record():
    from suite.runs.records import clean_value

    cleaned = clean_value(
        {"metrics": {"acc": 0.5}, "arrays": {"t": {"values": [1.0, float("nan")]}},
         "diagnostics": {"pi": [float("inf"), 2.0]}}
    )  # fmt: skip
    assert cleaned["arrays"]["t"]["values"] == [1.0, None]
    assert cleaned["diagnostics"]["pi"] == [None, 2.0]
    with pytest.raises(ValueError, match=r"metrics \['acc'\] are not finite"):
        clean_value({"metrics": {"acc": float("nan")}})


def test_an_unwritable_results_folder_is_a_clear_error(sweep, tmp_path):
    from suite.errors import RunError

    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(RunError, match="Cannot write run records into"):
        sweep([ANT], ["affinity"], results=blocker / "results")


def test_a_job_process_pins_the_allocator_and_drops_dasks_setting(monkeypatch):
    """Dask's nanny leaves MALLOC_TRIM_THRESHOLD_ in the environment; a job's process drops it
    (so the processes it starts do not inherit it) and pins glibc's thresholds."""
    from suite.runs import allocator
    from suite.runs.jobs import pin_threads

    monkeypatch.setenv(allocator.VARIABLE, "65536")
    pin_threads(1)  # every job's process setup
    assert allocator.VARIABLE not in os.environ
    assert allocator.pin_malloc_thresholds() is True  # glibc took the thresholds, again


FAULTS_BEFORE_AND_AFTER_PINNING = """
import resource, torch
from suite.runs.allocator import pin_malloc_thresholds

def faults_over_steps():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(50):
        torch.relu(torch.ones(700_000) - 0.5).sum()  # a 2.7 MiB tensor twice per step
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

faults_over_steps()
before = faults_over_steps()
pin_malloc_thresholds()
faults_over_steps()  # the heap grows once
print(before, faults_over_steps())
"""


def test_pinned_thresholds_keep_a_training_steps_tensors_off_fresh_pages():
    """In a process started as a Dask worker starts it, each step's tensors are mapped and
    faulted in afresh; once the thresholds are pinned they stay on the heap."""
    import subprocess
    import sys

    env = {**os.environ, "MALLOC_TRIM_THRESHOLD_": "65536"}
    out = subprocess.run(
        [sys.executable, "-c", FAULTS_BEFORE_AND_AFTER_PINNING],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    before, after = map(int, out.stdout.split())
    assert before > 10_000 and after < 100, (before, after)  # 50 steps × 2 × 680 pages


def test_each_pool_worker_takes_its_own_gpu_where_there_are_several(monkeypatch):
    import multiprocessing

    import torch

    from suite.runs.jobs import worker_device

    assert worker_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setattr(multiprocessing.current_process(), "_identity", (7,))
    assert worker_device("cuda") == torch.device("cuda", 2)  # the 7th worker: GPU 6 mod 4
    assert worker_device("cuda:1") == torch.device("cuda", 1)  # an explicit GPU is kept
    monkeypatch.setattr(multiprocessing.current_process(), "_identity", ())
    monkeypatch.setenv("GATEBENCH_WORKER_INDEX", "5")  # a Dask worker naming its share
    assert worker_device("cuda") == torch.device("cuda", 1)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert worker_device("cuda") == torch.device("cuda")
