"""A family written only inside tests/ (``tests/toy_family.py``: its own spec model, gate kind,
array metrics and prepared artefact) registers, plans, runs, aggregates and renders on the site
with no edit outside tests/."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from suite.errors import SpecError
from suite.gates.entries import get_gate
from suite.results.aggregate import aggregate
from suite.runs import artifacts
from suite.runs.plan import make_plan
from suite.runs.records import iter_records
from suite.runs.setup import SweepOptions
from suite.runs.sweep import Sweep
from suite.tasks.family import get_family
from suite.tasks.loading import load_task_file

SPEC = {
    "id": "toy/basic",
    "family": "toy",
    "version": 1,
    "title": "Toy running mean",
    "description": "Score the running mean of projected tokens.",
    "source": {"paper": "GateBench tests"},
    "primary_metric": "mse",
    "metrics": ["mse"],
    "seeds": 3,
    "data": {"length": 6, "width": 3},
    "train": {"steps": 150, "batch_size": 32, "lr": 0.05},
    "profiles": {"smoke": {"train": {"steps": 120}}},
}


@pytest.fixture(scope="module")
def toy():
    module = importlib.import_module("tests.toy_family")
    module.register()
    yield module
    module.unregister()


@pytest.fixture(scope="module")
def spec_file(toy, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("toy-specs")
    path = folder / "toy" / "basic.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(SPEC, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def swept(toy, spec_file, tmp_path_factory):
    spec = load_task_file(spec_file, spec_file.parent.parent)
    results = tmp_path_factory.mktemp("toy-results")
    gates = [get_gate("toy-last"), get_gate("toy-running-mean"), get_gate("affinity")]
    summary = Sweep(SweepOptions(profile="smoke", results=results, workers=2), log=print).run(
        [spec], gates
    )
    return spec, results, summary, list(iter_records(results))


def test_the_toy_spec_loads_and_its_errors_name_the_file(toy, spec_file, tmp_path):
    spec = load_task_file(spec_file, spec_file.parent.parent)
    assert spec.id == "toy/basic" and spec.for_profile("smoke").train.steps == 120
    assert spec.metric_info()["error_map"].kind == "matrix"
    bad = tmp_path / "toy" / "bad.yaml"
    bad.parent.mkdir()
    bad.write_text(yaml.safe_dump({**SPEC, "id": "toy/bad", "data": {"length": 6, "wide": 3}}))
    with pytest.raises(SpecError, match=r"bad.yaml: field 'data.wide': unknown field"):
        load_task_file(bad, tmp_path)


def test_gates_pair_only_with_families_of_their_kind(toy, spec_file, tmp_path):
    spec = load_task_file(spec_file, spec_file.parent.parent)
    gates = [get_gate("affinity"), get_gate("toy-last")]
    plan = make_plan([spec], gates, "smoke", tmp_path)
    assert [p.gate.id for p in plan.pairs] == ["toy-last"]
    assert plan.skipped == []  # a router is not "unsupported" here: it is simply not paired


def test_the_toy_family_runs_with_its_prepared_artifact(swept):
    spec, results, summary, records = swept
    assert (summary.ok, summary.failed, summary.rejected) == (6, 0, 0), summary.failures
    family = get_family("toy")
    smoke = spec.for_profile("smoke")
    for seed in range(3):
        slot = artifacts.slot(results, family, smoke, seed)
        digest = slot.content_hash()
        assert digest is not None and slot.path.is_file()
        used = {r.provenance.artifact for r in records if r.seed_index == seed}
        assert used == {digest}  # every gate's run of that seed named the same artefact
    assert {r.gate.id for r in records} == {"toy-last", "toy-running-mean"}
    for record in records:
        assert record.conformance["kind"] == "scorer"
        names = {c["name"] for c in record.conformance["checks"] if c["passed"]}
        assert {"causality", "streaming", "batch_isolation", "determinism"} <= names


def test_a_second_sweep_reuses_the_artifact_and_the_runs(swept):
    spec, results, _, _ = swept
    gates = [get_gate("toy-last"), get_gate("toy-running-mean")]
    logs: list[str] = []
    again = Sweep(SweepOptions(profile="smoke", results=results, workers=2), log=logs.append).run(
        [spec], gates
    )
    assert (again.cached, again.ok) == (6, 0)
    assert not any("Preparing" in line for line in logs)


def test_an_artifact_that_cannot_be_built_fails_only_its_runs(toy, spec_file, tmp_path):
    """One seed's artefact raising leaves a failed record per gate for that seed, with the
    reason; the task's other seeds and the other tasks run."""
    spec = load_task_file(spec_file, spec_file.parent.parent)
    broken_path = spec_file.parent / "broken.yaml"
    data = {**SPEC["data"], "broken_seed": 1}
    broken_path.write_text(yaml.safe_dump({**SPEC, "id": "toy/broken", "data": data}))
    broken = load_task_file(broken_path, spec_file.parent.parent)
    broken_path.unlink()
    logs: list[str] = []
    options = SweepOptions(profile="smoke", results=tmp_path, workers=2, seeds=2)
    summary = Sweep(options, log=logs.append).run([spec, broken], [get_gate("toy-last")])
    assert (summary.ok, summary.failed) == (3, 1), summary.failures
    assert any("FAILED to prepare toy/broken seed 1: ZeroDivisionError" in line for line in logs)
    (failed,) = [r for r in iter_records(tmp_path) if r.status == "failed"]
    assert (failed.task.id, failed.seed_index) == ("toy/broken", 1)
    assert "preparing the task's artefact for this seed failed: ZeroDivisionError" in failed.reason


def test_the_toy_arrays_aggregate_element_wise(swept):
    _, _, _, records = swept
    result = aggregate(records).tasks[0]
    last, mean = result.gates["toy-last"], result.gates["toy-running-mean"]
    assert mean.cells["mse"].summary.mean < last.cells["mse"].summary.mean
    curve = mean.arrays["error_by_position"]
    assert curve.mean.shape == (6,) and curve.n.tolist() == [3] * 6
    per_seed = np.array([r.arrays["error_by_position"].values for r in mean.records.values()])
    np.testing.assert_allclose(curve.mean, per_seed.mean(axis=0))
    assert np.all(curve.low <= curve.mean) and np.all(curve.mean <= curve.high)
    assert mean.arrays["error_map"].mean.shape == (6, 4)
    assert mean.cells["mse"].rank == 1 and last.cells["mse"].rank == 2


def test_the_toy_family_renders_on_the_site(swept, tmp_path):
    from suite.website.site import render_site

    _, _, _, records = swept
    agg = aggregate(records)
    out = render_site(agg, records, tmp_path / "site").out
    index = (out / "index.html").read_text()
    assert "Family <code>toy</code>" in index and get_family("toy").description in index
    assert 'id="board-' in index  # a leaderboard of its own (reference toy-last, ideal mse 0)
    page = (out / "tasks" / "toy__basic.html").read_text()
    curve = page.split('class="plot line-plot"')[1]
    assert "error_by_position on toy/basic" in page and '<polygon class="band"' in curve
    heatmaps = page.split('class="plot heatmap"')[1:]
    assert len(heatmaps) == 2  # one per gate
    assert all(len(re.findall(r'<rect class="cell"', h)) == 6 * 4 for h in heatmaps)
