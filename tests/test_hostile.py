"""Hostile gates beyond the contract's checks: reading what a run must not read, randomness the
harness does not control, and manifests that point outside their folder."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from suite.errors import SubmissionError
from suite.gates.submissions import load_manifest
from suite.runs.sandbox import landlock_abi

ANT = "transition/anticipation"
REPO = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(landlock_abi() < 1, reason="this kernel has no Landlock")
@pytest.mark.parametrize("target", ["records", "submission"])
def test_a_run_cannot_read_the_records_or_other_submissions(sweep, tasks, tmp_path, target):
    results = tmp_path / "results"
    if target == "records":
        sweep([ANT], ["affinity"], seeds=1, results=results)
        path = next((results / "runs").rglob("*.json"))
    else:
        path = REPO / "submissions" / "selective-memory" / "gate.py"
    assert path.read_bytes()  # readable here, in the parent
    task = tasks[ANT]
    tasks[ANT] = task.model_copy(update={"gate_params": {"test-reads": {"target": str(path)}}})
    try:
        _, records = sweep([ANT], ["test-reads"], seeds=1, results=results)
    finally:
        tasks[ANT] = task
    (record,) = [r for r in records if r.gate.id == "test-reads"]
    assert record.status == "failed" and "PermissionError" in record.reason


@pytest.mark.parametrize("gate_id", ["test-urandom", "test-clock"])
def test_randomness_outside_the_seeded_generators_is_rejected(sweep, gate_id):
    _, records = sweep([ANT], ["affinity", gate_id], seeds=1)
    (record,) = [r for r in records if r.gate.id == gate_id]
    assert record.status == "rejected", record.reason
    assert "determinism" in record.reason or "hidden state across calls" in record.reason


@pytest.mark.parametrize(
    "entry_point", ["../../suite/cli:main", "/etc/passwd:x", "gate:Gate; import os"]
)
def test_an_entry_point_cannot_leave_its_folder(tmp_path, entry_point):
    folder = tmp_path / "escape"
    folder.mkdir()
    (folder / "submission.yaml").write_text(
        textwrap.dedent(f"""\
        name: escape
        authors: [Mallory]
        description: tries to load code from outside its folder
        entry_point: "{entry_point}"
        families: [transition]
        """)
    )
    with pytest.raises(SubmissionError, match="field 'entry_point'"):
        load_manifest(folder)
