"""Hostile gates beyond the contract's checks: reading what a run must not read, randomness the
harness does not control, and manifests that point outside their folder."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from suite.errors import SubmissionError
from suite.gates.submissions import load_manifest
from tests.confinement import need_landlock

ANT = "transition/anticipation"
REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("target", ["records", "submission"])
def test_a_run_cannot_read_the_records_or_other_submissions(sweep, tasks, tmp_path, target):
    need_landlock(1, "confinement")
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


def test_an_import_that_hangs_is_stopped_and_the_others_load(tmp_path):
    from suite.runs.setup import SweepOptions
    from suite.runs.submit import load_submissions
    from suite.tasks.loading import load_all_tasks

    root = tmp_path / "subs"
    for name, code in (("hangs", "import time\ntime.sleep(600)\n"), ("fine", FINE_GATE)):
        folder = root / name
        folder.mkdir(parents=True)
        (folder / "gate.py").write_text(code)
        (folder / "submission.yaml").write_text(
            f"name: {name}\nauthors: [T]\ndescription: d\nentry_point: gate:Gate\n"
            "families: [transition]\n"
        )
    options = SweepOptions(profile="smoke", results=tmp_path / "r", workers=2, time_limit_s=3)
    tasks = [t for t in load_all_tasks() if t.id == ANT]
    loaded = load_submissions([root / "hangs", root / "fine"], tasks, options)
    assert [e.id for e in loaded.entries] == ["fine"]
    assert len(loaded.errors) == 1 and "exceeded its time limit of 3 s" in loaded.errors[0]


FINE_GATE = """
from torch import nn
from suite.contract import GateOutput, RouterGate


class Gate(RouterGate):
    def __init__(self, info):
        super().__init__(info)
        self.W = nn.Linear(info.d_model, info.n_experts)

    def forward(self, x, state=None):
        return GateOutput(self.W(x))
"""


SALT_SPY = """
import re
from pathlib import Path

from torch import nn
from suite.contract import GateOutput, RouterGate


def spied_salt():
    \"\"\"Look for a salt in every process's command line, and read a salt file named there.\"\"\"
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().decode().split("\\0")
        except OSError:
            continue
        for flag, value in zip(args, args[1:]):
            if flag == "--salt" and re.fullmatch("[0-9a-f]{8,64}", value):
                return value
            if flag == "--salt-file":
                try:
                    return Path(value).read_text().strip()
                except OSError:
                    pass
    return None


class Gate(RouterGate):
    def __init__(self, info):
        super().__init__(info)
        found = spied_salt()
        if found:
            raise RuntimeError(f"spied the salt {found}")
        self.W = nn.Linear(info.d_model, info.n_experts)

    def forward(self, x, state=None):
        return GateOutput(self.W(x))
"""


def test_a_salt_file_stays_secret_where_a_salt_on_the_command_line_does_not(tmp_path):
    """Every process can read every command line (/proc/PID/cmdline): a gate finds a salt given
    with --salt there. Given with --salt-file (as --salt new saves it) the gate finds the path
    but cannot read the file, and runs on data it cannot regenerate."""
    need_landlock(1, "confinement")
    from suite.runs.records import iter_records

    folder = tmp_path / "subs" / "spy"
    folder.mkdir(parents=True)
    (folder / "gate.py").write_text(SALT_SPY)
    (folder / "submission.yaml").write_text(
        "name: spy\nauthors: [Eve]\ndescription: reads command lines\nentry_point: gate:Gate\n"
        "families: [transition]\n"
    )
    salt_file = tmp_path / "secret" / "salt"
    salt_file.parent.mkdir()
    salt_file.write_text("5a175a17\n")
    common = ["run", "--task", ANT, "--gate", "spy", "--profile", "smoke", "--seeds", "1"]
    common += ["--workers", "1", "--submissions", str(tmp_path / "subs"), "--quiet"]
    for how, salt in (("--salt", "5a175a17"), ("--salt-file", str(salt_file))):
        results = tmp_path / how.strip("-")
        subprocess.run(
            [sys.executable, "-m", "suite.cli", *common, "--results", str(results), how, salt],
            check=True, capture_output=True, timeout=300,
        )  # fmt: skip
        (record,) = list(iter_records(results))
        assert record.provenance.salt == "5a175a17"
        if how == "--salt":
            assert record.status == "rejected" and "spied the salt 5a175a17" in record.reason
        else:
            assert record.status == "ok", record.reason


@pytest.mark.parametrize(
    ("gate_id", "says"),
    [
        ("test-grows-parameters", "parameters, 68 when it was built"),
        ("test-hidden-trainable", "not one of its parameters"),
    ],
)
def test_what_a_gate_trains_cannot_escape_its_parameter_budget(sweep, gate_id, says):
    """Parameters created after the budget check (on the first real batch) or tensors that take
    gradients without being parameters are found in the gate's process and the run rejected;
    the honest twin of the same size is ranked."""
    _, records = sweep([ANT], ["test-honest-linear", gate_id], seeds=1)
    by_gate = {r.gate.id: r for r in records}
    assert by_gate["test-honest-linear"].ok
    assert by_gate[gate_id].status == "rejected" and says in by_gate[gate_id].reason


def test_only_gatebench_ceilings_are_told_the_generator():
    """A baseline ceiling gets the generator's settings also in a process of its own
    (--isolate-baselines); a submission never, whatever its payload claims."""
    from suite.runs.jobs import _info
    from suite.tasks.family import get_family
    from suite.tasks.loading import load_all_tasks

    spec = next(t for t in load_all_tasks() if t.id == ANT)
    family = get_family(spec.family)
    gate = {"id": "bayes", "ceiling": True}

    def told(**fields) -> bool:
        return "generator" in _info(family, spec, {"gate": {**gate, **fields}}).extras

    assert told() and told(origin="baseline", isolate=True)
    assert not told(isolate=True)  # an isolated gate of unknown origin
    assert not told(origin="test", isolate=True)
    assert not told(origin="baseline", submission_dir="/tmp/sub", isolate=True)
