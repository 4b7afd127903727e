"""The command line, as users and nox sessions call it (in a subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

REQUIRED_REPORT_KEYS = {"task", "gate", "metric", "mean", "sd", "ci_low", "ci_high", "n", "status"}


def gatebench(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "suite.cli", *args], capture_output=True, text=True, timeout=300
    )
    if check and proc.returncode != 0:
        pytest.fail(f"gatebench {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
    return proc


def test_list_tasks_and_gates():
    tasks = gatebench("list", "tasks").stdout
    assert "transition/anticipation" in tasks and "transition/precision-shift" in tasks
    gates = json.loads(gatebench("list", "gates", "--format", "json").stdout)
    ids = {g["id"] for g in gates}
    assert {"affinity", "beta", "pi", "ant", "beta+pi+ant", "beta+ant-additive", "oracle"} <= ids
    assert next(g for g in gates if g["id"] == "oracle")["causal"] is False


def test_run_then_report_json(tmp_path):
    results = tmp_path / "results"
    run = gatebench(
        "run",
        "--task",
        "transition/anticipation",
        "--gate",
        "affinity",
        "--gate",
        "beta+ant",
        "--profile",
        "smoke",
        "--seeds",
        "2",
        "--results",
        str(results),
        "--strict",
    )
    assert "beta+ant" in run.stdout and "Δ vs affinity" in run.stdout  # the table
    assert "[4/4]" in run.stderr  # progress lines
    rows = json.loads(gatebench("report", "--results", str(results), "--format", "json").stdout)
    results_rows = [r for r in rows if r["row"] == "result"]
    assert results_rows and all(row.keys() >= REQUIRED_REPORT_KEYS for row in results_rows)
    assert {r["row"] for r in rows} <= {"result", "array", "claim", "finding"}
    assert all(r["seed_mode"] == "public" for r in results_rows)
    row = next(
        r for r in results_rows if r["gate"] == "beta+ant" and r["metric"] == "acc_transition"
    )
    assert (
        row["n"] == 2 and row["status"] == "ok" and row["ci_low"] <= row["mean"] <= row["ci_high"]
    )
    again = gatebench(
        "run",
        "--task",
        "transition/anticipation",
        "--gate",
        "affinity",
        "--gate",
        "beta+ant",
        "--profile",
        "smoke",
        "--seeds",
        "2",
        "--results",
        str(results),
    )
    assert "4 already done, 0 to run" in again.stderr


def test_user_errors_are_one_line_messages_not_tracebacks(tmp_path):
    proc = gatebench(
        "run", "--task", "transition/anticipatoin", "--results", str(tmp_path), check=False
    )
    assert proc.returncode == 2
    assert "Did you mean transition/anticipation" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = gatebench("run", "--gate", "betta", "--results", str(tmp_path), check=False)
    assert proc.returncode == 2 and "Unknown gate 'betta'" in proc.stderr
    proc = gatebench(
        "run",
        "--device",
        "cuda:7",
        "--task",
        "transition/anticipation",
        "--profile",
        "smoke",
        "--results",
        str(tmp_path),
        check=False,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_a_gate_asked_for_by_name_reports_its_broken_manifest(tmp_path):
    """``--gate NAME`` picks submissions by the name in their manifest; where the manifest does
    not load, the user learns why, not only that NAME is unknown."""
    folder = tmp_path / "subs" / "mygate"
    folder.mkdir(parents=True)
    (folder / "submission.yaml").write_text("name: mygate\nkind: router\nentry: gate:MyGate\n")
    (folder / "gate.py").write_text("")
    proc = gatebench(
        "run", "--task", "transition/anticipation", "--profile", "smoke", "--gate", "mygate",
        "--submissions", str(tmp_path / "subs"), "--results", str(tmp_path / "r"), check=False,
    )  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{folder / 'submission.yaml'}: field 'entry_point': required field" in proc.stderr
    assert "field 'entry': unknown field" in proc.stderr
    assert "Unknown gate 'mygate'" in proc.stderr
    quiet = gatebench(
        "run", "--task", "transition/anticipation", "--profile", "smoke", "--gate", "affinity",
        "--seeds", "1", "--submissions", str(tmp_path / "subs"), "--results", str(tmp_path / "r"),
    )  # fmt: skip
    assert "mygate" not in quiet.stderr  # not asked for: not loaded


def test_report_without_results_says_what_to_do(tmp_path):
    proc = gatebench("report", "--results", str(tmp_path / "none"))
    assert "No results yet" in proc.stdout


def test_a_scheduler_address_selects_the_dask_executor(monkeypatch):
    from suite.cli import _executor, _parser

    assert _executor(_parser().parse_args(["run"])) == "process"
    monkeypatch.setenv("GATEBENCH_SCHEDULER", "tcp://127.0.0.1:8786")
    args = _parser().parse_args(["run"])
    assert (args.scheduler, _executor(args)) == ("tcp://127.0.0.1:8786", "dask")
    assert _executor(_parser().parse_args(["run", "--executor", "inline"])) == "inline"
