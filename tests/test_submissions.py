"""Submitting a gate: scaffold, manifest validation, import errors, conformance, sandboxed runs.

Every bad submission gets a message naming its file and problem; none stops the others; none is
ranked.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from suite.errors import SubmissionError
from suite.gates.entries import all_gates
from suite.gates.scaffold import new_submission
from suite.gates.submissions import load_manifest, submission_hash
from suite.results.aggregate import aggregate
from suite.runs.records import iter_records
from suite.runs.setup import SweepOptions
from suite.runs.submit import load_submissions, render_summary, submit
from suite.runs.sweep import Sweep
from suite.tasks.loading import load_all_tasks
from suite.website.site import build_site

ANT = "transition/anticipation"
REPO = Path(__file__).resolve().parent.parent

GATE_HEADER = """
import time
import torch
from torch import nn
from suite.contract import GateOutput, RouterGate, TaskInfo


class Gate(RouterGate):
    def __init__(self, info: TaskInfo) -> None:
        super().__init__(info)
        self.W = nn.Linear(info.d_model, info.n_experts)
        self.calls = 0
"""

BAD_FORWARDS = {
    "wrong-shape": "return GateOutput(torch.cat([self.W(x), self.W(x)[..., :1]], dim=-1))",
    "nan-output": "return GateOutput(self.W(x) * float('nan'))",
    "peeks-ahead": "return GateOutput(self.W(torch.roll(x, -1, dims=1)))",
    "mixes-batch": "return GateOutput(self.W(x - x.mean(dim=0, keepdim=True)))",
    "sleeps": "self.calls += 1\n"
              "        if self.training and self.calls > 5:\n"
              "            time.sleep(600)\n"
              "        return GateOutput(self.W(x))",
    "hogs-memory": "self.calls += 1\n"
                   "        if self.training and self.calls > 5:\n"
                   "            self.big = torch.ones(16 * 1024**3)\n"
                   "        return GateOutput(self.W(x))",
    "good": "return GateOutput(self.W(x))",
}  # fmt: skip


def make_submission(root: Path, name: str, forward: str | None = None, **manifest) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    data = {
        "name": name,
        "authors": ["Test Author"],
        "description": f"test submission {name}",
        "entry_point": "gate:Gate",
        "families": ["transition"],
        **manifest,
    }
    (folder / "submission.yaml").write_text(yaml.safe_dump(data))
    body = f"\n    def forward(self, x, state=None):\n        {forward or BAD_FORWARDS['good']}\n"
    (folder / "gate.py").write_text(textwrap.dedent(GATE_HEADER) + body)
    return folder


@pytest.fixture
def options(tmp_path) -> SweepOptions:
    return SweepOptions(
        profile="smoke", results=tmp_path / "results", workers=2, seeds=1, time_limit_s=3,
        memory_mb=1024,
    )  # fmt: skip


def test_manifest_errors_name_the_file_and_field(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SubmissionError, match=r"no submission\.yaml here"):
        load_manifest(tmp_path / "empty")
    folder = make_submission(tmp_path, "typo", colour="blue")
    with pytest.raises(SubmissionError) as err:
        load_manifest(folder)
    assert f"{folder / 'submission.yaml'}: field 'colour': unknown field" in str(err.value)
    assert "entry_point" in str(err.value)  # the allowed fields are listed
    folder = make_submission(tmp_path, "bad-kind", kind="painter")
    with pytest.raises(SubmissionError, match="no task family runs gates of kind 'painter'"):
        load_manifest(folder)
    folder = make_submission(tmp_path, "wrong-family", kind="updater")  # families: [transition]
    with pytest.raises(SubmissionError, match="do not run gates of kind 'updater'"):
        load_manifest(folder)
    folder = make_submission(tmp_path, "bad-family", families=["vision"])
    with pytest.raises(SubmissionError, match=r"unknown families \['vision'\]"):
        load_manifest(folder)
    folder = make_submission(tmp_path, "bad-url", url="javascript:alert(1)")
    with pytest.raises(SubmissionError, match="field 'url'"):
        load_manifest(folder)


def test_import_problems_are_reported_per_submission_and_the_rest_go_on(tmp_path, options):
    root = tmp_path / "subs"
    good = make_submission(root, "good")
    missing_class = make_submission(root, "bad-entry", entry_point="gate:Nope")
    broken = make_submission(root, "syntax-error")
    (broken / "gate.py").write_text("def broken(:\n    pass\n")
    raising = make_submission(root, "raises-on-import")
    (raising / "gate.py").write_text("import torch\nraise RuntimeError('no GPU here')\n")
    bad_param = make_submission(root, "bad-param", hyperparameters={"width": 3})
    tasks = [t for t in load_all_tasks() if t.id == ANT]
    loaded = load_submissions([good, missing_class, broken, raising, bad_param], tasks, options)
    assert [e.id for e in loaded.entries] == ["good"]
    errors = "\n".join(loaded.errors)
    assert "field 'entry_point': module gate.py has no class 'Nope' (classes there: Gate" in errors
    assert f"{broken / 'gate.py'}, line 1: syntax error" in errors
    assert "raised RuntimeError: no GPU here (line 2)" in errors
    assert "field 'hyperparameters': ['width'] are not parameters of Gate.__init__" in errors


def test_bad_gates_are_rejected_or_failed_and_never_ranked(tmp_path, options):
    root = tmp_path / "subs"
    folders = [make_submission(root, name, forward) for name, forward in BAD_FORWARDS.items()]
    tasks = [t for t in load_all_tasks() if t.id == ANT]
    loaded = load_submissions(folders, tasks, options)
    assert not loaded.errors and len(loaded.entries) == len(BAD_FORWARDS)
    affinity = next(g for g in all_gates() if g.id == "affinity")
    summary = Sweep(options, log=lambda m: None).run(tasks, [affinity, *loaded.entries])
    records = {r.gate.id: r for r in iter_records(options.results)}
    assert records["good"].ok and records["affinity"].ok
    assert records["good"].provenance.sandbox.startswith(("landlock", "scratch"))
    expect = {
        "wrong-shape": ("rejected", "expected (B, T, E) = (4, 12, 4)"),
        "nan-output": ("rejected", "outputs contain NaN or inf"),
        "peeks-ahead": ("rejected", "reads the future"),
        "mixes-batch": ("rejected", "mixes information across the batch"),
        "sleeps": ("failed", "exceeded its time limit of 3 s"),
        "hogs-memory": ("failed", "exceeded its memory limit of 1024 MiB"),
    }
    for name, (status, words) in expect.items():
        assert records[name].status == status, (name, records[name].reason)
        assert words in records[name].reason, (name, records[name].reason)
    assert summary.ok == 2
    result = aggregate(list(iter_records(options.results))).tasks[0]
    ranked = {g for g, res in result.gates.items() if res.cells[result.task.primary_metric].rank}
    assert ranked == {"affinity"}  # on public seeds a submission is shown, never ranked
    assert result.gates["good"].status == "public-seeds" and result.gates["good"].scored


def test_parameter_budget_is_enforced(tmp_path, options):
    folder = make_submission(tmp_path, "too-big", parameter_budget=10)
    tasks = [t for t in load_all_tasks() if t.id == ANT]
    entry = load_submissions([folder], tasks, options).entries[0]
    Sweep(options, log=lambda m: None).run(tasks, [entry])
    record = next(iter_records(options.results))
    assert record.status == "rejected"
    assert (
        "the manifest declares at most 10 trainable parameters; this gate has 68" in record.reason
    )
    roomy = make_submission(tmp_path, "roomy", parameter_budget=5000)
    entry = load_submissions([roomy], tasks, options).entries[0]
    Sweep(options, log=lambda m: None).run(tasks, [entry])
    record = next(r for r in iter_records(options.results) if r.gate.id == "roomy")
    check = next(c for c in record.conformance["checks"] if c["name"] == "parameter_budget")
    assert check["detail"] == "68 trainable parameters (limit 5,000)"  # the tighter of the two


def test_scaffold_then_submit_end_to_end(tmp_path, options):
    folder = new_submission("my-first-gate", tmp_path / "subs")
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "gate.py", "submission.yaml"]
    with pytest.raises(SubmissionError, match="already exists"):
        new_submission("my-first-gate", tmp_path / "subs")
    with pytest.raises(SubmissionError, match="not a valid gate name"):
        new_submission("My Gate", tmp_path / "subs")
    options = replace(options, time_limit_s=120)  # 3 s is for the sleeping gate; a busy CI box
    result = submit(folder, options, log=lambda m: None)
    assert result.ok, render_summary(result)
    assert {o.task for o in result.outcomes} == {
        t.id for t in load_all_tasks() if t.family == "transition"
    }  # every task of its families, and only those
    text = render_summary(result)
    assert "my-first-gate" in text and "Δ vs strongest baseline" in text and "rank" in text
    audited = [int(n) for n in re.findall(r"audits on the real batches: (\d+) passed", text)]
    assert len(audited) == len(result.outcomes) and all(n > 0 for n in audited)
    records = [r for r in iter_records(options.results) if r.gate.id == "my-first-gate"]
    assert records and all(r.ok for r in records)
    assert records[0].gate.origin == "submission" and records[0].gate.authors == ["Your Name"]
    assert records[0].gate.source_hash == submission_hash(folder)
    # ... and the gate appears on the site, with a page of its own
    site = build_site(options.results).out
    assert (site / "gates" / "my-first-gate.html").exists()
    assert "my-first-gate" in (site / "index.html").read_text()
    # the baselines ran on the same seeds, so the comparison is paired
    seeds = {r.provenance.data_fingerprint for r in iter_records(options.results)
             if r.task.id == ANT and r.seed_index == 0}  # fmt: skip
    assert len(seeds) == 1


def test_an_updater_scaffold_submits_end_to_end_on_the_facts_family(tmp_path, options):
    folder = new_submission("my-updater", tmp_path / "subs", kind="updater")
    assert "kind: updater" in (folder / "submission.yaml").read_text()
    with pytest.raises(SubmissionError, match="No template for kind 'painter'"):
        new_submission("other", tmp_path / "subs", kind="painter")
    options = replace(options, time_limit_s=120)  # 3 s is for the sleeping gate; a busy CI box
    result = submit(folder, options, log=lambda m: None)
    assert result.ok, render_summary(result)
    assert {o.task for o in result.outcomes} == {
        t.id for t in load_all_tasks() if t.family == "facts"
    }
    records = [r for r in iter_records(options.results) if r.gate.id == "my-updater"]
    assert records and all(r.ok and r.gate.kind == "updater" for r in records)
    assert all(r.audits and r.provenance.artifact for r in records)  # audited, on the base
    assert "my-updater" in render_summary(result)


def test_editing_a_submission_reruns_it(tmp_path, options):
    folder = make_submission(tmp_path, "edited")
    tasks = [t for t in load_all_tasks() if t.id == ANT]
    entry = load_submissions([folder], tasks, options).entries[0]
    assert Sweep(options, log=lambda m: None).run(tasks, [entry]).ok == 1
    (folder / "gate.py").write_text((folder / "gate.py").read_text() + "\n# a comment\n")
    entry = load_submissions([folder], tasks, options).entries[0]
    again = Sweep(options, log=lambda m: None).run(tasks, [entry])
    assert (again.cached, again.ok) == (0, 1)


def test_the_example_submission_is_valid_and_not_a_baseline():
    manifest = load_manifest(REPO / "submissions" / "selective-memory")
    assert manifest.name not in {g.id for g in all_gates() if g.origin == "baseline"}
    assert manifest.entry_point == "gate:SelectiveMemoryRouter"


def test_submit_cli_reports_a_broken_submission_with_exit_code_2(tmp_path):
    folder = make_submission(tmp_path, "syntax")
    (folder / "gate.py").write_text("class Gate(:\n")
    proc = subprocess.run(
        [sys.executable, "-m", "suite.cli", "submit", str(folder), "--profile", "smoke",
         "--results", str(tmp_path / "r"), "--no-site"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert f"{folder / 'gate.py'}, line 1: syntax error" in proc.stderr
    assert "Traceback" not in proc.stderr
