"""The prepared GPU checks (``suite.bench.gpu``), tried on CPU at the smoke profile."""

from __future__ import annotations

import json
import sys

import pytest
import torch

from suite.bench import gpu as bench_gpu
from suite.tasks.families.lm.efficiency import allocated_mb, moe_latency


def test_the_headline_is_each_gates_mean_over_its_ok_records(sweep, tmp_path):
    _, records = sweep(["transition/anticipation"], ["affinity", "beta"], workers=0)
    found = bench_gpu.headline(tmp_path / "results", "transition/anticipation", "acc_transition")
    assert set(found["gates"]) == {"affinity", "beta"}
    for gate, row in found["gates"].items():
        values = [r.metrics["acc_transition"] for r in records if r.gate.id == gate]
        assert row["n"] == len(values) == 2
        assert row["mean"] == pytest.approx(sum(values) / len(values))
    assert found["devices"] and all(d.startswith("cpu") for d in found["devices"])


def test_every_item_is_a_command_of_this_python_and_the_sweeps_name_the_device(tmp_path):
    parsed = type("Args", (), {"out": tmp_path, "device": "cuda", "profile": "paper"})()
    commands = bench_gpu.item_commands(parsed)
    assert list(commands) == list(bench_gpu.ITEMS)
    for runs in commands.values():
        assert runs and all(cmd[0] == sys.executable for cmd in runs)
    for item in ("table5", "table6", "facts"):
        for cmd in commands[item]:
            assert cmd[cmd.index("--device") + 1] == "cuda"
            assert cmd[cmd.index("--profile") + 1] == "paper"
    assert commands["moe"][0][commands["moe"][0].index("--device") + 1] == "cuda"


def test_an_item_past_its_limit_is_stopped_and_the_others_still_run(tmp_path, monkeypatch):
    monkeypatch.setattr(bench_gpu, "LIMITS_S", {**bench_gpu.LIMITS_S, "env": 1})
    monkeypatch.setattr(bench_gpu, "ENV_PROBE", "import time; time.sleep(30)")
    out = tmp_path / "checks"
    assert bench_gpu.main(["--out", str(out), "--device", "cpu", "--items", "env"]) == 0
    summary = json.loads((out / "gpu_checks.json").read_text())
    assert summary["items"]["env"]["runs"][0]["status"] == 124


def test_the_efficiency_table_takes_a_device():
    found = moe_latency(tokens=64, d_model=8, ff_mult=2, min_run_time=0.01, device="cpu")
    assert set(found) == {"E=2, k=1", "E=5, k=2", "E=8, k=2"}
    for rows in found.values():
        assert rows["top-k batched"]["ratio"] == 1.0
        assert all(row["ms"] > 0 for row in rows.values())
    assert allocated_mb(lambda: torch.ones(1024, 1024), "cpu") >= 4.0


@pytest.mark.slow
def test_the_whole_script_runs_small_on_cpu(tmp_path):
    out = tmp_path / "checks"
    assert bench_gpu.main(["--out", str(out), "--device", "cpu", "--profile", "smoke"]) == 0
    summary = json.loads((out / "gpu_checks.json").read_text())
    assert list(summary["items"]) == list(bench_gpu.ITEMS)
    for item in summary["items"].values():
        assert all(run["status"] == 0 for run in item["runs"])
    assert summary["items"]["env"]["found"]["torch"] == torch.__version__
    assert len(summary["items"]["table5"]["headline"]["gates"]) >= len(bench_gpu.TABLE5[1])
    assert set(summary["items"]["table6"]["headline"]["gates"]) == set(bench_gpu.TABLE6[1])
    assert "moe_latency_ms" in json.loads((out / "bench.json").read_text())


def test_items_past_the_whole_budget_are_skipped_and_say_so(tmp_path):
    out = tmp_path / "checks"
    argv = ["--out", str(out), "--device", "cpu", "--items", "env", "--budget-s", "5"]
    assert bench_gpu.main(argv) == 0
    run = json.loads((out / "gpu_checks.json").read_text())["items"]["env"]["runs"][0]
    assert run["status"] is None and "budget" in run["skipped"]
